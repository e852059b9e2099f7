"""Document collections in the UI: a panel that builds one from uploads or paths and tries a question on
it, and the pickers other tabs use to choose a collection. Not a tab of its own: the Chat tab holds the
panel (chat with documents is where collections are used), the Data and Evaluate tabs hold pickers.

The logic is `core.documents`; this module lays out widgets and wires them.
"""

from __future__ import annotations

from pathlib import Path

import gradio as gr

from core.data.views import keep_upload
from core.documents import CollectionSettings, RetrievalSettings, build_collection, list_collections, open_collection
from tabs.common import AppContext, error_text, t

DEFAULTS = CollectionSettings()
STRINGS = {
    "en": {
        "documents.picker": "Documents (answers use and cite the relevant passages)",
        "documents.none": "No documents",
        "documents.panel": "📄 Build a document collection",
        "documents.files": "Documents (PDF, DOCX, HTML, Markdown, text, JSONL of {\"text\": ...})",
        "documents.paths": "…or paths on this machine, one per line",
        "documents.name": "Collection name",
        "documents.chunk_tokens": "Tokens per chunk", "documents.overlap": "Overlap tokens",
        "documents.embedding": "Embedding model for search by meaning (sentence-transformers folder or Hub id; empty = BM25 only)",
        "documents.build": "Build collection",
        "documents.try": "Try a question on the chosen collection",
        "documents.search": "Search",
    },
    "zh": {
        "documents.picker": "文档（回答会引用相关段落）",
        "documents.none": "不使用文档",
        "documents.panel": "📄 建立文档集",
        "documents.files": "文档（PDF、DOCX、HTML、Markdown、纯文本、{\"text\": ...} 格式的 JSONL）",
        "documents.paths": "……或本机上的路径，每行一个",
        "documents.name": "文档集名称",
        "documents.chunk_tokens": "每块词元数", "documents.overlap": "重叠词元数",
        "documents.embedding": "语义检索用的嵌入模型（sentence-transformers 文件夹或 Hub ID；留空则只用 BM25）",
        "documents.build": "建立文档集",
        "documents.try": "在所选文档集上试一个问题",
        "documents.search": "检索",
    },
}


def collection_choices(ctx: AppContext, with_none: bool = True) -> list[tuple[str, str]]:
    """(label, name) for each collection name, newest version; "" first means none."""
    seen: dict[str, str] = {}
    for meta in list_collections(ctx.workspace):
        counts = meta["counts"]
        seen.setdefault(meta["name"], f"📄 {meta['name']} · {counts['files']} files, {counts['chunks']} chunks")
    none = [("—", "")] if with_none else []
    return none + [(label, name) for name, label in seen.items()]


def picker(ctx: AppContext, elem_id: str, label: str = "documents.picker") -> gr.Dropdown:
    return gr.Dropdown(collection_choices(ctx), value="", label=t(label), elem_id=elem_id)


def build_panel(ctx: AppContext, collection_picker: gr.Dropdown) -> None:
    """Upload → build → report; a try-out search on the picked collection. A new collection is picked."""
    with gr.Accordion(t("documents.panel"), open=False, elem_id="documents-panel"):
        with gr.Row():
            files = gr.File(label=t("documents.files"), file_count="multiple", scale=3, elem_id="documents-files")
            paths = gr.Textbox(label=t("documents.paths"), lines=3, scale=2, elem_id="documents-paths")
        with gr.Row():
            name = gr.Textbox("notes", label=t("documents.name"), elem_id="documents-name")
            chunk_tokens = gr.Number(DEFAULTS.chunk_tokens, precision=0, minimum=32, label=t("documents.chunk_tokens"))
            overlap = gr.Number(DEFAULTS.overlap_tokens, precision=0, minimum=0, label=t("documents.overlap"))
            embedding = gr.Textbox(DEFAULTS.embedding_model, label=t("documents.embedding"), scale=2)
        build_button = gr.Button(t("documents.build"), variant="primary", elem_id="documents-build")
        report = gr.Markdown(elem_id="documents-report")
        with gr.Row():
            question = gr.Textbox(label=t("documents.try"), scale=4, elem_id="documents-question")
            search_button = gr.Button(t("documents.search"), scale=1, elem_id="documents-search")
        results = gr.Markdown(elem_id="documents-results")

    def on_build_clicked(uploaded, typed, collection_name, tokens, overlap_tokens, embedding_model,
                         progress=gr.Progress()):
        try:
            chosen = [keep_upload(ctx.workspace, f) for f in uploaded or []]
            chosen += [Path(line.strip()).expanduser() for line in (typed or "").splitlines() if line.strip()]
            settings = CollectionSettings(chunk_tokens=int(tokens or 0), overlap_tokens=int(overlap_tokens or 0),
                                          embedding_model=(embedding_model or "").strip())
            folder = build_collection(ctx.workspace, chosen, (collection_name or "").strip() or "notes", settings,
                                      progress=lambda fraction, message: progress(fraction, desc=message))
        except Exception as error:  # shown under the button; nothing was written
            return error_text(error), gr.update()
        summary = (folder / "report.md").read_text(encoding="utf-8")
        meta_name = open_collection(ctx.workspace, folder.name).name
        return f"✅ `{folder.name}`\n\n{summary}", gr.update(choices=collection_choices(ctx), value=meta_name)

    def on_search_clicked(collection_name, text):
        if not collection_name:
            return "❌ Pick a collection first."
        try:
            return search_markdown(ctx, collection_name, text)
        except Exception as error:
            return error_text(error)

    build_button.click(on_build_clicked, [files, paths, name, chunk_tokens, overlap, embedding],
                       [report, collection_picker])
    for trigger in (search_button.click, question.submit):
        trigger(on_search_clicked, [collection_picker, question], results)


def search_markdown(ctx: AppContext, collection_name: str, question: str) -> str:
    collection = open_collection(ctx.workspace, collection_name)
    hits = collection.search(question or "", RetrievalSettings())
    if not hits:
        return f"Nothing in '{collection.name}' is relevant to this question."
    return "\n\n".join(f"**[{number}] {hit.where}** · score {hit.score:.3f}\n\n> " + hit.chunk["text"].replace("\n", "\n> ")
                       for number, hit in enumerate(hits, start=1))
