"""The Export tab's downloads: each export of a run as a file in the browser, with Ollama and LM Studio lines.

Files are prepared by `core.export.downloads` (folders zipped on demand, with progress) and handed to
a `gr.DownloadButton`. Gradio serves only files under the working folder or the temp folder, so a
workspace elsewhere is linked (or copied, across disks) into a temp folder first; adding the workspace
to Gradio's `allowed_paths` instead would serve it by URL to anyone, locked mode or not.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from core.export import choices, downloads
from tabs.common import AppContext, error_text, t
from tabs.messages import locale_of, translated

STRINGS = {
    "en": {
        "export.download_title": "### Download", "export.download_what": "Export to download",
        "export.download_prepare": "Prepare download", "export.download_button": "⬇ Download",
        "export.ollama": "Ollama: download the GGUF and its Modelfile into one folder, then run there",
    },
    "zh": {
        "export.download_title": "### 下载", "export.download_what": "要下载的导出内容",
        "export.download_prepare": "准备下载", "export.download_button": "⬇ 下载",
        "export.ollama": "Ollama：把 GGUF 和它的 Modelfile 下载到同一文件夹，然后在那里运行",
    },
}


@dataclass(frozen=True)
class Downloads:
    """The download section's widgets."""

    picker: Any
    prepare: Any
    button: Any
    note: Any
    ollama: Any
    lmstudio: Any


def build(ctx: AppContext, run_picker) -> Downloads:
    gr.Markdown(t("export.download_title"))
    with gr.Row():
        picker = gr.Dropdown([], label=t("export.download_what"), elem_id="export-download-what", scale=4)
        prepare = gr.Button(t("export.download_prepare"), elem_id="export-download-prepare", scale=1)
    ui = Downloads(
        picker, prepare,
        button=gr.DownloadButton(t("export.download_button"), visible=False, elem_id="export-download-button"),
        note=gr.Markdown(elem_id="export-download-note"),
        ollama=gr.Code(language="shell", label=t("export.ollama"), interactive=False, elem_id="export-ollama"),
        lmstudio=gr.Markdown(elem_id="export-lmstudio"))

    def on_prepare(run, name, progress=gr.Progress()):
        try:
            ctx.require_unlocked("Downloads")
            path = downloads.prepare(ctx.workspace, run, name, lambda done, total, message: progress(
                done / total if total else 1.0, desc=message))
        except Exception as error:  # a refused or failed download is said next to the button
            return gr.update(visible=False, value=None), error_text(error)
        return (gr.update(visible=True, value=_servable(path), label=f"⬇ {path.name}"),
                f"✅ {path.name} is ready: press ⬇ to save it.")

    ui.prepare.click(on_prepare, [run_picker, ui.picker], [ui.button, ui.note])
    def on_picked(run, name, request: gr.Request = None):
        return *guide(ctx, run, name, locale_of(request)), gr.update(visible=False), ""  # no stale file

    ui.picker.change(on_picked, [run_picker, ui.picker], [ui.ollama, ui.lmstudio, ui.button, ui.note])
    return ui


def refresh(ctx: AppContext, run: str | None):
    """Fresh choices for `run` (after a run change or a finished job), the recommended GGUF selected."""
    found = downloads.items(ctx.workspace, run) if run else []
    names = [item.name for item in found]
    recommended = choices.quant_options(ctx.workspace, run)[1][0] if run else ""
    first = next((n for n in names if n.endswith(f"-{recommended}.gguf")), None) or \
        next((n for n in names if n.endswith(".gguf")), names[0] if names else None)
    return gr.update(choices=[(item.label, item.name) for item in found], value=first), gr.update(visible=False)


def guide(ctx: AppContext, run: str | None, name: str | None, locale: str = "en") -> tuple[str, str]:
    """The Ollama lines and LM Studio hint (in `locale`) for the chosen GGUF (or its Modelfile), else for the
    first one."""
    ggufs = [item.name for item in downloads.items(ctx.workspace, run)] if run else []
    ggufs = [n for n in ggufs if n.endswith(".gguf")]
    chosen = str(name or "").replace(".Modelfile", ".gguf")
    chosen = chosen if chosen in ggufs else (ggufs[0] if ggufs else "")
    if not chosen:
        return "", ""
    return downloads.ollama_lines(chosen), translated(downloads.lmstudio_hint(chosen), locale)


def _servable(path: Path) -> str:
    """`path`, or a link to it in the temp folder when Gradio would refuse to serve it where it is."""
    real = path.resolve()
    if any(real.is_relative_to(Path(root).resolve()) for root in (os.getcwd(), tempfile.gettempdir())):
        return str(real)
    folder = Path(tempfile.mkdtemp(prefix="chatsmith-download-"))
    try:
        os.link(real, folder / real.name)
    except OSError:  # another disk: hard links cannot cross it
        shutil.copyfile(real, folder / real.name)
    return str(folder / real.name)
