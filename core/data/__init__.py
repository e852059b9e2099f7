"""Data stage: turn Alpaca, ShareGPT, UltraChat and OpenAI-messages files into one clean dataset.

Public API (other stages import only these):

* `prepare(inputs, options) -> Prepared` — read, convert, clean, dedupe, filter and split; writes nothing.
  `inputs` are paths or `Source`s; `Prepared` holds `train`, `validation`, `report` and `rejects`.
* `save_version(workspace, prepared, name) -> Path` — an immutable folder named by content hash.
* `list_versions(workspace) -> list[Path]` — saved versions, newest first.
* `load_split(version_dir, "train" | "validation") -> list[dict]` — canonical records
  `{"id", "source", "messages": [{"role", "content"}]}` (TRL's conversational format).

The command line does the same: `python -m core.data prepare INPUT [INPUT ...] --out DIR`.

Preference data (pairs for DPO, good and bad answers for KTO) has its own modules beside these:
`preferences` (the recipe), `preference_formats` (the public formats), `preference_sources` (arena votes and
chat ratings), `preference_versions` (saved versions) and `preference_cli` (`python -m core.data preferences`).
"""

from core.data.options import ColumnMapping, PrepareOptions, Source
from core.data.pipeline import Prepared, Reject, inspect, prepare
from core.data.versions import list_versions, load_split, save_version

__all__ = ["ColumnMapping", "PrepareOptions", "Prepared", "Reject", "Source", "inspect", "list_versions",
           "load_split", "prepare", "save_version"]
