"""Document collections in the UI: a panel that builds one from uploads or paths and tries a question on
it, and the pickers other tabs use to choose a collection. Not a tab of its own: the Chat tab holds the
panel (chat with documents is where collections are used), the Data and Evaluate tabs hold pickers.

The logic is `core.documents`; this module lays out widgets and wires them.
"""

from __future__ import annotations

from pathlib import Path

import gradio as gr

from core.data.options import UploadLimits
from core.data.views import keep_upload
from core.documents import CollectionSettings, RetrievalSettings, build_collection, list_collections, open_collection
from core.errors import BadInputError
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
            typed_paths = [Path(line.strip()).expanduser() for line in (typed or "").splitlines() if line.strip()]
            if typed_paths:  # as in the Data tab: a network visitor must not read the server's files
                ctx.require_unlocked("Reading files by their path on this machine (upload them instead)")
            chosen = [keep_upload(ctx.workspace, f, UploadLimits.from_env()) for f in uploaded or []] + typed_paths
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
                       [report, collection_picker], api_name="build_collection")
    for trigger in (search_button.click, question.submit):
        trigger(on_search_clicked, [collection_picker, question], results)


def search_markdown(ctx: AppContext, collection_name: str, question: str) -> str:
    collection = open_collection(ctx.workspace, collection_name)
    hits = collection.search(question or "", RetrievalSettings())
    if not hits:
        return f"Nothing in '{collection.name}' is relevant to this question."
    return "\n\n".join(f"**[{number}] {hit.where}** · score {hit.score:.3f}\n\n> " + hit.chunk["text"].replace("\n", "\n> ")
                       for number, hit in enumerate(hits, start=1))


GENERATE_STRINGS = {
    "en": {"documents.generate": "🧪 Generate questions from documents (a background job)",
           "documents.generate_note": "The chat model asks a question about each chunk and answers it from the chunk; "
                                      "answers not found in their chunk are dropped. The result is a dataset version.",
           "documents.generate_model": "Chat model (a GGUF through llama.cpp is fastest)",
           "documents.generate_count": "Chunks to ask about", "documents.generate_name": "Dataset name",
           "documents.generate_start": "Start", "documents.generate_stop": "Stop",
           "documents.collection": "Collection"},
    "zh": {"documents.generate": "🧪 从文档生成问答（后台任务）",
           "documents.generate_note": "对话模型针对每个文本块提出问题并根据该块作答；答案不在文本块中的样本会被丢弃。结果保存为一个数据集版本。",
           "documents.generate_model": "对话模型（通过 llama.cpp 运行 GGUF 最快）",
           "documents.generate_count": "提问的文本块数", "documents.generate_name": "数据集名称",
           "documents.generate_start": "开始", "documents.generate_stop": "停止",
           "documents.collection": "文档集"},
}
for _locale, _strings in GENERATE_STRINGS.items():
    STRINGS[_locale].update(_strings)


def build_generation(ctx: AppContext) -> None:
    """The Data tab's "generate from documents" source: a job with progress and stop; re-attaches on reload."""
    from core import inference

    with gr.Accordion(t("documents.generate"), open=False, elem_id="generate-panel"):
        gr.Markdown(t("documents.generate_note"))
        with gr.Row():
            collection = picker(ctx, "generate-collection", "documents.collection")
            model = gr.Dropdown([(c.label, c.id) for c in inference.list_choices(ctx.workspace)], value="default",
                                label=t("documents.generate_model"), elem_id="generate-model")
            count = gr.Number(20, precision=0, minimum=1, maximum=2000, label=t("documents.generate_count"))
            name = gr.Textbox("document-questions", label=t("documents.generate_name"), elem_id="generate-name")
        with gr.Row():
            start = gr.Button(t("documents.generate_start"), variant="primary", elem_id="generate-start")
            stop = gr.Button(t("documents.generate_stop"), elem_id="generate-stop")
        status = gr.Markdown(elem_id="generate-status")
        timer = gr.Timer(1.0, active=False)
        folder_state = gr.State(None)

    def on_start_clicked(collection_name, model_id, chunks, dataset_name):
        try:
            ctx.require_unlocked("Generating data")
            if not collection_name:
                raise BadInputError("Pick a document collection first.", "Build one in the Chat tab's Documents panel.")
            folder = start_generation(ctx, collection_name, model_id, int(chunks or 0), dataset_name)
        except Exception as error:
            return None, error_text(error), gr.Timer(active=False)
        return str(folder), "…", gr.Timer(active=True)

    def on_tick(folder):
        if not folder:
            return "", gr.Timer(active=False)
        job = ctx.jobs.snapshot(Path(folder))
        text = f"**{job.state.value}** · {job.step}/{job.total or '?'} chunks · {job.message}"
        if job.result.get("dataset"):
            text += f"\n\n💾 `{job.result['dataset']}` — pick it in the Train tab."
        return text + (f"\n\n❌ {job.error}" if job.error else ""), gr.Timer(active=not job.state.finished)

    def on_page_load():
        running = [job for job in ctx.jobs.list(kind="generate") if not job.state.finished]
        folder = str(running[0].folder) if running else None
        return (folder, *on_tick(folder), gr.update(choices=collection_choices(ctx, with_none=False)),
                gr.update(choices=[(c.label, c.id) for c in inference.list_choices(ctx.workspace)]))

    start.click(on_start_clicked, [collection, model, count, name], [folder_state, status, timer])
    stop.click(lambda folder: ctx.jobs.request_stop(Path(folder)) if folder else None, folder_state)
    timer.tick(on_tick, folder_state, [status, timer])
    ctx.demo.load(on_page_load, outputs=[folder_state, status, timer, collection, model])


def start_generation(ctx: AppContext, collection_name: str, model_id: str, count: int, dataset_name: str) -> Path:
    """Submit the generation job; a transformers model on an accelerator queues behind other heavy jobs."""
    import time
    import uuid

    from core import inference
    from core.evaluate.contenders import describe_choice

    choice = next((c for c in inference.list_choices(ctx.workspace) if c.id == model_id), None)
    if choice is None:
        raise BadInputError(f"The model '{model_id}' is no longer available.", "Refresh the page.")
    folder = ctx.workspace.jobs / f"generate-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
    params = {"collection": collection_name, "model": describe_choice(choice), "count": count,
              "name": (dataset_name or "").strip() or f"{collection_name}-questions", "seed": 0,
              "workspace": str(ctx.workspace.root)}
    ctx.jobs.submit(folder, "core.documents.generate:run", params, kind="generate", heavy=choice.kind != "gguf",
                    title=f"Questions from '{collection_name}' · {choice.id}")
    return folder
