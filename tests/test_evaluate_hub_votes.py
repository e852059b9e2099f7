"""Votes mirrored to a Hub dataset, so a Space restart loses none, on a mock Hub: restart, re-import, failures, token.

Like tests/test_export_hub.py, huggingface_hub's own code runs (CommitScheduler, list_repo_files,
hf_hub_download) and `set_client_factory` routes its requests to an `httpx2.MockTransport`, so nothing
reaches the network. Only a dataset repository is faked: create, commit, tree listing and file download.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import random
import threading
import time
from types import SimpleNamespace

import pytest

from core.evaluate import hub_votes, session
from core.evaluate.arena import Arena, ImportCount, RateLimit, RateLimitedError

CANARY = "hf_CANARYvotesTokenNeverLeavesTheHeader42"
REPO = "me/arena-votes"
PROMPT = [{"role": "user", "content": "Say hi"}]


class FakeDatasetHub:
    """One dataset repository on a mock Hub; `files` holds what was committed (path in repo → bytes)."""

    def __init__(self, files=None, exists=True, status=None, network_down=False):
        self.files = dict(files or {})
        self.exists, self.status, self.network_down = exists, status, network_down
        self.requests = []

    def handler(self, request):
        import httpx2

        self.requests.append(request)
        if self.network_down:
            raise httpx2.ConnectError("Name or service not known", request=request)
        if self.status:
            return httpx2.Response(self.status, json={"error": f"status {self.status}"})
        path = request.url.path
        if path == "/api/repos/create":
            self.exists = True
            return httpx2.Response(200, json={"url": f"https://huggingface.co/datasets/{REPO}"})
        if not self.exists:
            return httpx2.Response(404, headers={"X-Error-Code": "RepoNotFound"}, json={"error": "Repo not found"})
        if path == f"/api/datasets/{REPO}/tree/main":
            return httpx2.Response(200, json=[{"type": "file", "path": name, "size": len(data),
                                               "oid": hashlib.sha1(data).hexdigest()}
                                              for name, data in self.files.items()])
        if path.startswith(f"/datasets/{REPO}/resolve/main/"):
            data = self.files[path.split("/resolve/main/", 1)[1]]
            headers = {"ETag": f'"{hashlib.sha1(data).hexdigest()}"', "X-Repo-Commit": "b" * 40,
                       "Content-Length": str(len(data))}
            return httpx2.Response(200, headers=headers, content=b"" if request.method == "HEAD" else data)
        if "/preupload/" in path:
            files = json.loads(request.content)["files"]
            return httpx2.Response(200, json={"files": [{"path": f["path"], "uploadMode": "regular",
                                                         "shouldIgnore": False} for f in files]})
        if "/commit/" in path:
            for item in map(json.loads, request.content.decode().splitlines()):
                if item["key"] == "file":
                    self.files[item["value"]["path"]] = base64.b64decode(item["value"]["content"])
            return httpx2.Response(200, json={"commitUrl": f"https://huggingface.co/datasets/{REPO}/commit/{'a' * 40}",
                                              "commitOid": "a" * 40, "pullRequestUrl": None})
        return httpx2.Response(404, json={"error": "not mocked"})


@pytest.fixture
def mock_hub(monkeypatch):
    """Installs a FakeDatasetHub, sets the Space's variables, and stops every scheduler at the end."""
    import httpx2
    import huggingface_hub
    from huggingface_hub import constants
    from huggingface_hub.utils._http import default_client_factory

    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    # huggingface_hub retries a failing GET for ~23 s before giving up; its waits are skipped here
    monkeypatch.setattr(huggingface_hub.utils._http, "time", SimpleNamespace(sleep=lambda seconds: None))
    monkeypatch.setenv(hub_votes.REPO_ENV, REPO)
    monkeypatch.setenv(hub_votes.TOKEN_ENV, CANARY)
    schedulers, start_mirror = [], hub_votes.start_mirror

    def recording_start_mirror(*args, **kwargs):
        schedulers.append(start_mirror(*args, **kwargs))
        return schedulers[-1]

    monkeypatch.setattr(hub_votes, "start_mirror", recording_start_mirror)

    def install(**kwargs) -> FakeDatasetHub:
        fake = FakeDatasetHub(**kwargs)
        huggingface_hub.set_client_factory(lambda: httpx2.Client(transport=httpx2.MockTransport(fake.handler)))
        return fake

    yield install
    for scheduler in schedulers:
        scheduler.stop()  # also turns its at-exit push into a no-op
    huggingface_hub.set_client_factory(default_client_factory)


def new_arena(root, rate_limit=RateLimit(max_votes=3, window_s=600)) -> Arena:
    """The arena as tabs/evaluate.py builds it, in an app folder of its own (a fresh Space has an empty disk)."""
    return Arena(root / "ratings.sqlite", rate_limit=rate_limit, vote_log=root / "votes" / "votes.jsonl")


def cast(arena: Arena, rater: str, winner: str, rng: random.Random, models=("base", "tuned", "q4")) -> str:
    battle = arena.new_battle(list(models), PROMPT, rater, rng=rng)
    arena.save_answers(battle, "Hello!", "Hi there.")
    arena.vote(battle, winner, rater, f"key-{battle}")
    return battle


def cast_some_votes(arena: Arena) -> None:
    """Ten votes from four raters, and a bot flagged for voting too fast (its votes leave the board)."""
    rng = random.Random(7)
    for number, winner in enumerate(["a", "b", "tie", "both_bad", "a", "a", "b", "a", "tie", "b"]):
        cast(arena, f"hf:rater{number % 4}", winner, rng)
    with pytest.raises(RateLimitedError):
        for _ in range(4):
            cast(arena, "hf:bot", "a", rng)


def test_votes_survive_a_restart_through_the_hub_dataset(mock_hub, tmp_path):
    fake = mock_hub(exists=False)  # the very first start: no dataset yet
    before = new_arena(tmp_path / "first")
    status = hub_votes.start(before)
    assert status.warnings == () and status.restored == ImportCount() and fake.exists
    cast_some_votes(before)
    status.scheduler.trigger().result()  # what the scheduler does every few minutes and at exit
    (first_upload,) = fake.files
    assert first_upload.startswith("votes/") and first_upload.endswith("/votes.jsonl")

    after = new_arena(tmp_path / "after-restart")  # empty database, empty disk
    status = hub_votes.start(after)
    assert status.restored == ImportCount(added=14, present=0, malformed=0)  # 13 votes and the bot's flag
    assert "mirrored to the Hub dataset" in status.text() and "Votes restored at start: 14" in status.text()
    assert session.leaderboard_view(after, rounds=50) == session.leaderboard_view(before, rounds=50)
    assert after.vote_count() == before.vote_count() == 13
    assert after.flagged_raters() == before.flagged_raters() == {"hf:bot": "more than 3 votes in 600 s"}

    cast(after, "hf:rater9", "b", random.Random(1))
    status.scheduler.trigger().result()
    assert len(fake.files) == 2  # the second start uploads beside the first, never over it
    assert len(fake.files[first_upload].decode().splitlines()) == 14


def test_restoring_twice_adds_nothing_and_malformed_lines_are_skipped(mock_hub, tmp_path):
    good = {"battle_id": "b1", "model_a": "base", "model_b": "tuned", "winner": "a", "rater": "hf:ann",
            "created": 1.0, "idempotency_key": "k1"}
    lines = [json.dumps(good), "{not json", json.dumps([1, 2]), json.dumps({**good, "battle_id": "b2", "winner": "x"}),
             json.dumps({**good, "battle_id": "b3", "model_b": "base"}),
             json.dumps({key: value for key, value in good.items() if key != "rater"}),
             json.dumps({**good, "battle_id": "b4", "idempotency_key": "k4", "winner": "tie"}), ""]
    mock_hub(files={"votes/start-1/votes.jsonl": "\n".join(lines).encode(),
                    "votes/start-2/votes.jsonl": (json.dumps(good) + "\n").encode(),  # same vote, another start
                    "README.md": b"# votes"})
    arena = new_arena(tmp_path)

    assert hub_votes.restore(arena, REPO, CANARY) == ImportCount(added=2, present=1, malformed=5)
    assert hub_votes.restore(arena, REPO, CANARY) == ImportCount(added=0, present=3, malformed=5)
    assert arena.vote_count() == 2 and [vote.winner for vote in arena.votes()] == ["a", "tie"]
    assert not arena.vote_log.exists()  # restored votes are history, not logged a second time
    replay = arena.vote("b1", "b", "hf:ann", "k1")  # the original idempotency key still means "same vote"
    assert replay["replayed"] and replay["winner"] == "a"


@pytest.mark.parametrize("hub, why", [
    ({"network_down": True}, "the Hugging Face Hub could not be reached"),
    ({"status": 401}, "the Hub refused the token (HTTP 401)"),
    ({"status": 500}, "HTTP 500"),
])
def test_a_failing_hub_never_stops_the_start_and_says_why(mock_hub, tmp_path, caplog, hub, why):
    mock_hub(**hub)
    arena = new_arena(tmp_path)
    status = hub_votes.start(arena)
    assert status.scheduler is None and len(status.warnings) == 2  # restore, then upload, both said
    assert why in status.warnings[0] and why in status.warnings[1]
    assert "not** mirrored" in status.text() and "votes/votes.jsonl" in status.text()
    assert why in caplog.text and any(record.levelno == logging.WARNING for record in caplog.records)
    cast(arena, "hf:ann", "a", random.Random(0))  # votes still land locally
    assert arena.vote_count() == 1 and len(arena.vote_log.read_text().splitlines()) == 1


@pytest.mark.parametrize("env, why", [
    ({hub_votes.TOKEN_ENV: ""}, "`HF_TOKEN` secret is not set"),
    ({hub_votes.REPO_ENV: "not a repo"}, "is not a dataset id"),
    ({"HF_HUB_OFFLINE": "1"}, "offline"),
])
def test_an_unusable_setup_is_explained_without_calling_the_hub(mock_hub, tmp_path, monkeypatch, env, why):
    fake = mock_hub()
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    status = hub_votes.start(new_arena(tmp_path))
    assert why in status.text() and status.scheduler is None and fake.requests == []


def test_the_token_is_sent_only_as_the_authorization_header(mock_hub, tmp_path, capsys, caplog):
    caplog.set_level(logging.DEBUG)
    fake = mock_hub()
    arena = new_arena(tmp_path / "workspace")
    status = hub_votes.start(arena)
    cast_some_votes(arena)
    status.scheduler.trigger().result()
    hub_votes.start(new_arena(tmp_path / "restarted"))
    fake.status = 401
    refused = hub_votes.start(new_arena(tmp_path / "refused"))

    authorised = [request for request in fake.requests if request.headers.get("authorization")]
    assert authorised and all(r.headers["authorization"] == f"Bearer {CANARY}" for r in authorised)
    for request in fake.requests:
        other = {key: value for key, value in request.headers.items() if key.lower() != "authorization"}
        assert CANARY not in str(request.url) + json.dumps(other) and CANARY.encode() not in request.content
    captured = capsys.readouterr()
    assert CANARY not in captured.out + captured.err + caplog.text + refused.text()
    written = [path for path in tmp_path.rglob("*") if path.is_file()]
    assert any(path.name == "votes.jsonl" for path in written)
    assert not [path for path in written if CANARY.encode() in path.read_bytes()]


def test_on_a_space_only_a_logged_in_rater_votes_through_the_tab(workspace, monkeypatch):
    import gradio as gr

    from tabs import evaluate as evaluate_tab
    from tabs.common import AppContext

    monkeypatch.setenv("SPACE_ID", "someone/chatsmith")
    monkeypatch.setenv("SYSTEM", "spaces")
    monkeypatch.delenv("OAUTH_CLIENT_ID", raising=False)  # README front-matter without `hf_oauth: true`
    monkeypatch.delenv(hub_votes.REPO_ENV, raising=False)
    with gr.Blocks() as demo:  # still starts: no login button that gradio would refuse without OAuth
        evaluate_tab.build(AppContext(workspace, demo=demo))
    on_vote_clicked = next(f.fn for f in demo.fns.values() if f.name == "on_vote_clicked")
    notices = {block.elem_id: block.value for block in demo.blocks.values() if isinstance(block, gr.Markdown)}
    assert "`CHATSMITH_VOTES_REPO`" in notices["votes-mirror"] and "lost on restart" in notices["votes-mirror"]
    assert "`hf_oauth: true`" in notices["sign-in-problem"]
    assert not any(isinstance(block, gr.LoginButton) for block in demo.blocks.values())

    arena = Arena(workspace.ratings_db)
    battle = arena.new_battle(["base", "tuned"], PROMPT, "hf:alice")
    arena.save_answers(battle, "Hello!", "Hi there.")
    current = {"battle_id": battle, "key": "k-1", "item": None}
    anonymous = SimpleNamespace(cookies={}, username=None)  # what gr.Request carries for a visitor
    refused = on_vote_clicked(current, anonymous, False, None)
    assert "only for logged-in raters" in refused[0] and arena.vote_count() == 0
    counted = on_vote_clicked(current, anonymous, False, SimpleNamespace(username="alice"))
    assert counted[0].startswith("**") and "A was **" in counted[0]
    assert [vote.rater for vote in arena.votes()] == ["hf:alice"]


def test_sign_in_is_offered_only_when_the_space_has_oauth(monkeypatch):
    import importlib.util

    monkeypatch.setenv("SYSTEM", "spaces")
    monkeypatch.setenv("OAUTH_CLIENT_ID", "client-id")
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: object())
    assert session.sign_in_problem() == ""
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None if name == "itsdangerous" else object())
    assert "`gradio[oauth]` (itsdangerous missing)" in session.sign_in_problem()


def test_a_slow_restore_never_holds_up_the_page_and_its_votes_appear_once_in(mock_hub, workspace, monkeypatch):
    """The restore runs at start-up in the background: building the page returns while it still waits on the
    Hub, the tab says the votes are being restored, and the leaderboard fills in once they are."""
    import gradio as gr

    from tabs import evaluate as evaluate_tab
    from tabs.common import AppContext

    vote = {"battle_id": "b1", "model_a": "default", "model_b": "run/tuned", "winner": "a", "rater": "hf:ann",
            "created": 1.0, "idempotency_key": "k1"}
    lines = [json.dumps(vote), json.dumps({**vote, "battle_id": "b2", "idempotency_key": "k2", "winner": "b"})]
    mock_hub(files={"votes/start-1/votes.jsonl": "\n".join(lines).encode()})
    release, real_restore = threading.Event(), hub_votes.restore

    def slow_restore(*args):
        assert release.wait(20), "the page build waited for the restore"
        return real_restore(*args)

    monkeypatch.setattr(hub_votes, "restore", slow_restore)
    with gr.Blocks() as demo:
        evaluate_tab.build(AppContext(workspace, demo=demo))  # returns while the restore is held
    on_restore_tick = next(f.fn for f in demo.fns.values() if f.name == "on_restore_tick")
    notice, _, advice, *_, timer = on_restore_tick()
    assert "Restoring the votes" in notice and "**0 votes**" in advice and timer.active
    release.set()
    deadline = time.monotonic() + 30
    while "Restoring the votes" in notice and time.monotonic() < deadline:
        time.sleep(0.1)
        notice, table, advice, *_, timer = on_restore_tick()
    assert "Votes restored at start: 2" in notice and "**2 votes**" in advice and not timer.active
    assert {row[-1] for row in table["value"]} == {"default", "run/tuned"}
