"""A chat-demo Space generated from a run, built from an allow-list.

No `.env`, databases, datasets, checkpoints or tokens can reach it.

Two targets:

* `cpu`     — llama-cpp-python serves a GGUF on the free CPU hardware; the GGUF is bundled or
  downloaded from the model repository at start-up;
* `zerogpu` — transformers + the LoRA adapter, generation wrapped in `@spaces.GPU`; the adapter is
  bundled or loaded from the model repository.

Only named files enter the bundle: `app.py` (chat only, from `assets/space/`), `requirements.txt`,
`README.md` (front-matter with every version a quoted string) and the model files. `check_bundle`
re-reads the finished folder and refuses anything outside that list or anything that looks like a
Hugging Face token, so no `.env`, database, dataset, checkpoint or token can ride along.
"""

from __future__ import annotations

import importlib.metadata
import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from core import atomic
from core.errors import BadInputError
from core.export.package import DEFAULT_LICENSE, base_model_id
from core.export.run import Run

ASSETS = Path(__file__).resolve().parent.parent.parent / "assets" / "space"
TARGETS = ("cpu", "zerogpu")
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors", "tokenizer.json", "tokenizer_config.json",
                 "special_tokens_map.json", "chat_template.jinja")
TOKEN_PATTERN = re.compile(rb"hf_[A-Za-z0-9]{16,}")
LLAMA_CPP_WHEELS = "https://abetlen.github.io/llama-cpp-python/whl/cpu"  # prebuilt: no 20-minute build


@dataclass(frozen=True)
class SpaceSettings:
    target: str = "cpu"
    """"cpu" (llama.cpp on a GGUF, free hardware) or "zerogpu" (transformers + adapter on ZeroGPU)."""
    gguf: Path | None = None
    """CPU target: the GGUF to bundle, or (with model_repo) the file name to download at start-up."""
    model_repo: str = ""
    """Model repository to download the GGUF / adapter from at start-up, when they are not bundled."""
    bundle_model: bool = True
    """Copy the model file(s) into the Space; otherwise they come from model_repo."""
    title: str = ""

    def __post_init__(self) -> None:
        if self.target not in TARGETS:
            raise BadInputError(f"Space target '{self.target}' must be cpu or zerogpu.")
        if self.target == "cpu" and self.gguf is None:
            raise BadInputError("The CPU Space serves a GGUF: export one first, then pick it.")
        if not self.bundle_model and not self.model_repo:
            raise BadInputError("Without a bundled model the Space needs a model repository id to load from.",
                                "Push the model first and give its id, or bundle the model.")


def space_dir(run: Run, target: str) -> Path:
    return run.exports / f"space-{target}"


def build_space(run: Run, settings: SpaceSettings, out: Path | None = None) -> Path:
    out = Path(out) if out else space_dir(run, settings.target)
    title = settings.title or f"{run.name} chat"
    with atomic.directory(out, replace=True, owned=out == space_dir(run, settings.target)) as tmp:
        allowed = {"app.py", "requirements.txt", "README.md"}
        model_file = Path(settings.gguf).name if settings.gguf else ""
        if settings.bundle_model:
            allowed |= _copy_model(run, settings, tmp)
        values = {"__TITLE__": title, "__MODEL_REPO__": settings.model_repo, "__MODEL_FILE__": model_file,
                  "__BASE_MODEL__": base_model_id(run)}
        app = (ASSETS / f"app_{settings.target}.py").read_text(encoding="utf-8")
        for key, value in values.items():
            app = app.replace(key, repr(value))
        atomic.write_text(tmp / "app.py", app)
        atomic.write_text(tmp / "requirements.txt", requirements(settings.target))
        atomic.write_text(tmp / "README.md", readme(run, settings, title))
        check_bundle(tmp, allowed)
    return out


def _copy_model(run: Run, settings: SpaceSettings, folder: Path) -> set[str]:
    if settings.target == "cpu":
        source = Path(settings.gguf)
        if not source.is_file():
            raise BadInputError(f"{source} does not exist.", "Export the GGUF first.")
        shutil.copyfile(source, folder / source.name)
        return {source.name}
    (folder / "adapter").mkdir()
    copied = set()
    for name in ADAPTER_FILES:
        if (run.adapter / name).is_file():
            shutil.copyfile(run.adapter / name, folder / "adapter" / name)
            copied.add(f"adapter/{name}")
    return copied


def requirements(target: str) -> str:
    if target == "cpu":
        lines = [f"--extra-index-url {LLAMA_CPP_WHEELS}", _pin("llama-cpp-python"), _pin("huggingface-hub")]
    else:
        lines = ["spaces", _pin("torch"), _pin("transformers"), _pin("peft"), _pin("accelerate")]
    return "\n".join(lines) + "\n"


def readme(run: Run, settings: SpaceSettings, title: str) -> str:
    # Written by hand, not yaml.safe_dump: the Hub wants versions as quoted strings ("3.10" is not 3.1).
    quoted = json.dumps  # a JSON string is a valid double-quoted YAML scalar
    lines = ["---", f"title: {quoted(title[:60])}", 'emoji: "💬"', 'colorFrom: "indigo"', 'colorTo: "blue"',
             'sdk: "gradio"', f"sdk_version: {quoted(importlib.metadata.version('gradio'))}",
             'python_version: "3.11"', 'app_file: "app.py"', "pinned: false",
             f"license: {quoted(DEFAULT_LICENSE)}",
             f"suggested_hardware: {quoted('zero-a10g' if settings.target == 'zerogpu' else 'cpu-basic')}"]
    if settings.model_repo:
        lines += ["models:", f"  - {quoted(settings.model_repo)}"]
    lines += ["---", "", f"# {title}", "",
              f"A chat demo of a LoRA fine-tune of {base_model_id(run)}, generated by Chatsmith "
              f"({'llama.cpp on CPU' if settings.target == 'cpu' else 'transformers on ZeroGPU'}).", ""]
    return "\n".join(lines)


def check_bundle(folder: Path, allowed: set[str]) -> None:
    """Refuse a bundle holding anything not on its allow-list, or anything shaped like a token."""
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        relative = path.relative_to(folder).as_posix()
        if relative not in allowed:
            raise BadInputError(f"'{relative}' is not on the Space's allow-list; the bundle was not built.",
                                "Report this: only app.py, requirements.txt, README.md and the model belong.")
        if path.suffix in (".py", ".txt", ".md", ".json", ".jinja") and TOKEN_PATTERN.search(path.read_bytes()):
            raise BadInputError(f"'{relative}' contains something shaped like a Hugging Face token; "
                                "the bundle was not built.", "Remove the token from the run's files.")


def _pin(distribution: str) -> str:
    version = importlib.metadata.version(distribution).split("+")[0]  # "2.13.0+cpu" is a local build tag
    return f"{distribution}=={version}"
