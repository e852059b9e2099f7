"""Documents: collections of the user's files, searched to ground chat answers and to draw training data from.

Public API (other stages import only these):

* `build_collection(workspace, files, name, settings) -> Path` — read, chunk, index and save an immutable
  collection `workspace/documents/<name>-<hash12>/`, with a report of what was read and what was skipped.
* `open_collection(workspace, name) -> Collection` — load one (no rebuild); `.search(query, settings)` returns
  the relevant chunks as `Hit`s, best first, possibly none.
* `list_collections(workspace) -> list[dict]` — every collection's metadata, newest first.
* `ground(...)` and `GroundedBackend` (in `core.documents.grounding`) — answers that use and cite chunks.

The command line does the same: `python -m core.documents add FILES --name N`, `... search N "query"`.
"""

from core.documents.settings import CollectionSettings, RetrievalSettings
from core.documents.store import Collection, Hit, build_collection, find_collection, list_collections, open_collection

__all__ = ["Collection", "CollectionSettings", "Hit", "RetrievalSettings", "build_collection", "find_collection",
           "list_collections", "open_collection"]
