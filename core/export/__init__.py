"""Export stage: turn a training run into files people can use elsewhere.

A run folder (`workspace.runs/<run>/`, written by the Train stage) holds `config.yaml` (with `model`, the
base model reference, and `dataset`, the dataset version folder), `adapter/` (a PEFT adapter in
safetensors with its tokenizer and chat template), `events.jsonl` and `report.md`. Everything this
package writes lands under `workspace.exports/<run>/`:

* `package/`  — the adapter with a model card and a standalone `inference.py` (package.py);
* `merged/`   — base + adapter merged into plain safetensors (merge.py);
* `gguf/`     — llama.cpp files: F16 plus chosen quantisations and an Ollama Modelfile (gguf.py);
* `roundtrip.json` — agreement of the same greedy prompts across all of the above (roundtrip.py);
* `space-<target>/` — a chat-demo Space bundle (space.py);
* backups are single archives with a SHA-256 manifest, written anywhere (backup.py).

Fusion (fuse.py) writes a new run whose adapter every stage can use. Hub pushes live in hub.py. Long
steps run as jobs through `core.export.jobs`; the same steps run headless with `python -m core.export`.
"""
