"""Chat with documents end to end on the default model (its packaged GGUF through llama.cpp), over the
shipped English and Chinese documents, through the OpenAI-compatible API driven by the official `openai`
client against a live `python -m core.serve`.

A 135M model seldom restates a passage well, so the tests assert what the app is responsible for: the
question reaches the model with the passage that answers it, the answer cites that passage as [1] (source,
heading, chunk id that opens to the text), and a question the documents cannot answer gets no citation.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys

import pytest

from core.documents import open_collection
from tests.browser import ROOT, free_port
from tests.test_chat_api import _wait_for, client

pytestmark = pytest.mark.slow
QUESTIONS = [  # (question, the source it must cite first, text of the passage that answers it)
    ("How many years must a Senator have been a citizen?", "us-constitution.md", "nine Years a Citizen"),
    ("女职工生孩子可以休多少天产假？", "labour-law.md", "不少于九十天的产假"),
]


@pytest.fixture(scope="module")
def api(shipped_documents):
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "core.serve", "--model", "default", "--port", str(port),
                                "--workspace", str(shipped_documents.root)], cwd=ROOT, env=dict(os.environ),
                               stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        _wait_for(f"http://127.0.0.1:{port}/v1/models", process)
        yield client(f"http://127.0.0.1:{port}")
    finally:
        process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=30)


def squeeze(text: str) -> str:
    return " ".join(text.split())  # the shipped texts wrap lines inside sentences


def cited(shipped_documents, content: str) -> list[tuple[str, dict]]:
    """The answer's numbered sources, each with the chunk its id opens to."""
    collection = open_collection(shipped_documents, "shipped")
    lines = content.split("\n\nSources:\n", 1)[1].splitlines()
    return [(line, collection.chunks[int(line.rsplit("#", 1)[1].rstrip(")"))]) for line in lines]


@pytest.mark.parametrize("question,source,passage", QUESTIONS)
def test_the_api_answers_from_the_documents_and_cites_the_right_passage(api, shipped_documents, question, source,
                                                                        passage):
    reply = api.chat.completions.create(model="default+docs:shipped", temperature=0, max_tokens=40,
                                        messages=[{"role": "user", "content": question}])
    content = reply.choices[0].message.content
    answer = content.split("\n\nSources:\n")[0]
    [(first_line, first_chunk), *_] = cited(shipped_documents, content)
    assert answer.strip() and first_line.startswith(f"[1] {source} · ")
    assert passage in squeeze(first_chunk["text"])
    assert reply.usage.prompt_tokens > 150  # the passages were in the prompt, not just the question


def test_a_streamed_answer_ends_with_the_same_sources(api, shipped_documents):
    question, source, passage = QUESTIONS[0]
    stream = api.chat.completions.create(model="default+docs:shipped", temperature=0, max_tokens=40, stream=True,
                                         messages=[{"role": "user", "content": question}])
    content = "".join(chunk.choices[0].delta.content or "" for chunk in stream)
    [(first_line, first_chunk), *_] = cited(shipped_documents, content)
    assert first_line.startswith(f"[1] {source} · ") and passage in squeeze(first_chunk["text"])


def test_nothing_relevant_gets_no_citation_and_an_unknown_collection_is_refused(api):
    import openai

    reply = api.chat.completions.create(model="default+docs:shipped", temperature=0, max_tokens=16,
                                        messages=[{"role": "user", "content": "How do I bake sourdough bread?"}])
    content = reply.choices[0].message.content
    assert content.endswith("\n\n(Nothing in the collection 'shipped' is relevant to this question; "
                            "this answer does not use it.)")
    assert "Sources:" not in content and "[1]" not in content
    with pytest.raises(openai.BadRequestError, match="There is no document collection 'nope'"):
        api.chat.completions.create(model="default+docs:nope", messages=[{"role": "user", "content": "Hi"}])
    plain = api.chat.completions.create(model="default", max_tokens=8, messages=[{"role": "user", "content": "Hi"}])
    assert "Sources:" not in plain.choices[0].message.content  # the model alone answers as before


def test_a_collection_named_by_a_path_outside_the_workspace_is_refused(api, shipped_documents, tmp_path):
    """A caller must not make the server read and quote files of its choosing: a real collection copied
    outside the workspace, named by its path in the model id, is not opened."""
    import shutil

    import openai

    inside = open_collection(shipped_documents, "shipped").folder
    outside = shutil.copytree(inside, tmp_path / "elsewhere" / inside.name)
    with pytest.raises(openai.BadRequestError, match="There is no document collection"):
        api.chat.completions.create(model=f"default+docs:{outside}", messages=[{"role": "user", "content": "Hi"}])
    reply = api.chat.completions.create(model=f"default+docs:{inside}", temperature=0, max_tokens=8,
                                        messages=[{"role": "user", "content": QUESTIONS[0][0]}])
    assert "Sources:" in reply.choices[0].message.content  # the workspace's own collection, by path, still works
