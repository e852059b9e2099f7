"""Training data from documents: question / answer conversations grounded in a collection's chunks.

Contract: `run(ctx)` is a `core.jobs` target (params: `collection`, `model` as `describe_choice` gives it,
`count`, `name`, `seed`, `workspace`). It picks `count` chunks spread over the collection, asks the model
for a question each chunk answers and then for the answer from that chunk alone, and keeps a pair only if
the self-check passes: at least `MIN_SUPPORT` of the answer's content words (the BM25 terms) appear in the
chunk. Dropped pairs are counted by reason. Kept pairs become ordinary conversations
`{"messages": [question, answer], "source": <document file>, "chunk_id": <collection>#<index>}` that go
through the Data recipe (`core.data.prepare`: cleaning, dedupe, split, report) and are saved as a dataset
version, so the Train tab fine-tunes on them like any other; the report's sources are the documents that
fed it, and `report["generated"]` holds the counts. Progress is reported per chunk; a stop ends the loop
and saves what was kept. `generate_pairs` is the loop without the job, for tests and the command line.
"""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from core.documents.grounding import language
from core.documents.lexical import terms
from core.documents.store import Collection, open_collection
from core.errors import BadInputError
from core.workspace import Workspace

MIN_SUPPORT = 0.6
"""Share of the answer's content words that must appear in its chunk; below it the answer says more than
the chunk does (or something else), which is what fine-tuning on it would teach."""
MIN_CHUNK_TOKENS = 24  # shorter chunks are headings or list stubs: nothing to ask about
ASK = {"en": "Read the passage and write one question that the passage answers. Write only the question.\n\n"
             "Passage:\n{passage}",
       "zh": "阅读下面的段落，提出一个这段话能回答的问题。只写问题。\n\n段落：\n{passage}"}
ANSWER = {"en": "Answer the question with the sentence of the passage that answers it.\n\nPassage:\n{passage}\n\n"
                "Question: {question}",
          "zh": "用段落中回答这个问题的那句话来回答。\n\n段落：\n{passage}\n\n问题：{question}"}
REASONS = {"no_question": "no usable question", "not_grounded": "answer not found in its chunk",
           "empty_answer": "empty answer"}


def run(ctx) -> dict:
    from core.evaluate.contenders import choice_from_description
    from core import inference

    params = ctx.params
    workspace = Workspace(Path(params["workspace"])).ensure()
    collection = open_collection(workspace, params["collection"])
    ctx.log(f"Loading {params['model'].get('label') or params['model'].get('id')}…")
    backend = inference.open_backend(choice_from_description(params["model"]), workspace)
    pairs, dropped = generate_pairs(backend, collection, int(params["count"]), int(params.get("seed", 0)),
                                    progress=lambda done, total, note: ctx.progress(done, total, note),
                                    should_stop=ctx.should_stop, log=ctx.log)
    if not pairs:
        raise BadInputError(f"No example passed the self-check ({_dropped_text(dropped)}). Try another model, or "
                         "more chunks.")
    folder = save_dataset(workspace, ctx.folder, pairs, dropped, params, collection)
    message = f"Saved {folder.name}: {len(pairs)} examples kept; dropped {_dropped_text(dropped)}."
    ctx.log(message)
    return {"message": message, "dataset": str(folder), "kept": len(pairs), "dropped": dict(dropped)}


def generate_pairs(backend, collection: Collection, count: int, seed: int = 0,
                   progress: Callable[[int, int, str], None] = lambda done, total, note: None,
                   should_stop: Callable[[], bool] = lambda: False,
                   log: Callable[[str], None] = lambda line: None) -> tuple[list[dict], Counter]:
    from core.inference import GenerationSettings

    settings = GenerationSettings(max_new_tokens=96, temperature=0.0, repetition_penalty=1.1, seed=seed)
    chunks = pick_chunks(collection, count, seed)
    pairs, dropped = [], Counter()
    for done, chunk in enumerate(chunks):
        if should_stop():
            log(f"Stopped after {done} chunks.")
            break
        pair, reason = _pair(backend, chunk, settings)
        if pair is None:
            dropped[reason] += 1
            log(f"chunk {collection.chunk_id(chunk)}: dropped ({REASONS[reason]})")
        else:
            pairs.append({**pair, "source": chunk["source"], "chunk_id": collection.chunk_id(chunk)})
        progress(done + 1, len(chunks), f"{len(pairs)} kept, {sum(dropped.values())} dropped")
    return pairs, dropped


def pick_chunks(collection: Collection, count: int, seed: int) -> list[dict]:
    """`count` chunks with something to ask about, spread over the whole collection (seeded)."""
    usable = [chunk for chunk in collection.chunks if chunk["tokens"] >= MIN_CHUNK_TOKENS]
    if count >= len(usable):
        return usable
    step = len(usable) / count
    rng = random.Random(seed)
    return [usable[min(len(usable) - 1, int(i * step + rng.random() * step))] for i in range(count)]


def support(answer: str, passage: str) -> float:
    """Share of the answer's content words that appear in the passage (0 for an answer without any)."""
    words = terms(answer)
    present = set(terms(passage))
    return sum(word in present for word in words) / len(words) if words else 0.0


def save_dataset(workspace: Workspace, job_folder: Path, pairs: list[dict], dropped: Counter, params: dict,
                 collection: Collection) -> Path:
    """The pairs through the Data recipe, per source document, saved as a dataset version keeping chunk ids."""
    from core.data import PrepareOptions, Source, prepare, save_version

    folder = Path(job_folder) / "generated"
    folder.mkdir(parents=True, exist_ok=True)
    sources, chunk_ids = [], {}
    for document in sorted({pair["source"] for pair in pairs}):
        path = folder / f"{len(sources):02d}.jsonl"
        rows = [pair for pair in pairs if pair["source"] == document]
        path.write_text("".join(json.dumps({"messages": row["messages"]}, ensure_ascii=False) + "\n" for row in rows),
                        encoding="utf-8")
        sources.append(Source(path, name=document, format="messages"))
        chunk_ids.update({_key(row["messages"]): row["chunk_id"] for row in rows})
    prepared = prepare(sources, PrepareOptions(validation_share=0.1, seed=int(params.get("seed", 0))))
    for record in prepared.records:
        record["chunk_id"] = chunk_ids.get(_key(record["messages"]), "")
    prepared.report["generated"] = {"collection": collection.id, "model": params["model"].get("id", ""),
                                    "chunks": len(pairs) + sum(dropped.values()), "kept": len(pairs),
                                    "dropped": {REASONS[k]: v for k, v in dropped.items()}}
    return save_version(workspace, prepared, params.get("name") or f"{collection.name}-questions")


def _pair(backend, chunk: dict, settings) -> tuple[dict | None, str]:
    lang = language(chunk["text"])
    body = chunk["text"].split("\n", 1)[1] if chunk.get("heading") else chunk["text"]  # not the heading line
    question = _first_line(_complete(backend, ASK[lang].format(passage=body), settings))
    question = re.sub(r"^(question|问题)\s*[:：]\s*", "", question, flags=re.I).strip()
    if len(terms(question)) < 2:
        return None, "no_question"
    answer = _complete(backend, ANSWER[lang].format(passage=body, question=question), settings).strip()
    answer = re.sub(r"^(answer|回答|答案)\s*[:：]\s*", "", answer, flags=re.I).strip()
    if not answer:
        return None, "empty_answer"
    if support(answer, chunk["text"]) < MIN_SUPPORT:
        return None, "not_grounded"
    return {"messages": [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]}, ""


def _complete(backend, prompt: str, settings) -> str:
    return "".join(backend.stream([{"role": "user", "content": prompt}], settings))


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.strip().splitlines() if line.strip()), "")


def _key(messages: list[dict]) -> str:
    return json.dumps([(m["role"], m["content"].strip()) for m in messages], ensure_ascii=False)


def _dropped_text(dropped: Counter) -> str:
    return ", ".join(f"{count} {REASONS[reason]}" for reason, count in dropped.items()) or "none"
