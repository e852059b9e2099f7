"""Hub pushes against a mock Hub (httpx2.MockTransport): payloads, files, token hygiene, refusals that say what to do.

huggingface_hub 2.x talks through `httpx2` (its fork of httpx); `set_client_factory` routes every
request of the process to the mock, so nothing reaches the network.
"""

from __future__ import annotations

import base64
import json
import logging

import pytest

from core.errors import OfflineError
from core.export import hub
from core.export.package import package_adapter
from core.export.run import open_run
from core.export.space import SpaceSettings, build_space
from tests.export_helpers import make_run

CANARY = "hf_CANARYtokenNeverLeavesTheHeader0123"


class FakeHub:
    """Answers like the Hub; `create_statuses` are consumed one per create call, then 200."""

    def __init__(self, create_statuses=(), network_down=False):
        self.create_statuses = list(create_statuses)
        self.network_down = network_down
        self.requests = []

    def handler(self, request):
        import httpx2

        self.requests.append(request)
        if self.network_down:
            raise httpx2.ConnectError("Name or service not known", request=request)
        path = request.url.path
        if path == "/api/repos/create":
            status = self.create_statuses.pop(0) if self.create_statuses else 200
            body = json.loads(request.content)
            prefix = "spaces/" if body.get("type") == "space" else ""
            url = f"https://huggingface.co/{prefix}{body.get('organization')}/{body['name']}"
            return httpx2.Response(status, json={"error": f"status {status}", "url": url})
        if path == "/api/validate-yaml":
            return httpx2.Response(200, json={})
        if "/preupload/" in path:
            files = json.loads(request.content)["files"]
            return httpx2.Response(200, json={"files": [{"path": f["path"], "uploadMode": "regular",
                                                         "shouldIgnore": False} for f in files]})
        if "/commit/" in path:
            repo = path.split("/api/")[1].split("/commit/")[0]  # "models/me/x" or "spaces/me/x"
            return httpx2.Response(200, json={"commitUrl": f"https://huggingface.co/{repo}/commit/{'a' * 40}",
                                              "commitOid": "a" * 40, "pullRequestUrl": None})
        return httpx2.Response(404, json={"error": "not mocked"})

    def create_payloads(self):
        return [json.loads(r.content) for r in self.requests if r.url.path == "/api/repos/create"]

    def committed_files(self) -> dict[str, bytes]:
        commit = next(r for r in self.requests if "/commit/" in r.url.path)
        lines = [json.loads(line) for line in commit.content.decode().splitlines()]
        return {item["value"]["path"]: base64.b64decode(item["value"]["content"])
                for item in lines if item["key"] == "file"}


@pytest.fixture
def mock_hub(monkeypatch):
    import httpx2
    import huggingface_hub
    from huggingface_hub import constants
    from huggingface_hub.utils._http import default_client_factory

    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(hub, "RETRY_DELAYS_S", (0.0, 0.0, 0.0))
    fakes = []

    def install(**kwargs) -> FakeHub:
        fake = FakeHub(**kwargs)
        fakes.append(fake)
        huggingface_hub.set_client_factory(lambda: httpx2.Client(transport=httpx2.MockTransport(fake.handler)))
        return fake

    yield install
    huggingface_hub.set_client_factory(default_client_factory)


@pytest.fixture
def run(workspace, tiny_model_dir):
    make_run(workspace, tiny_model_dir)
    return open_run(workspace, "run-1")


def _assert_token_only_in_authorization(fake: FakeHub):
    authorised = [r for r in fake.requests if r.headers.get("authorization")]
    assert authorised and all(r.headers["authorization"] == f"Bearer {CANARY}" for r in authorised)
    for request in fake.requests:
        other_headers = {k: v for k, v in request.headers.items() if k.lower() != "authorization"}
        assert CANARY not in str(request.url) + json.dumps(other_headers)
        assert CANARY.encode() not in request.content


def test_space_push_creates_a_gradio_space_and_uploads_the_bundle(mock_hub, run, tmp_path, capsys, caplog):
    caplog.set_level(logging.DEBUG)
    fake = mock_hub()
    bundle = build_space(run, SpaceSettings(target="zerogpu", bundle_model=False, model_repo="me/adapter"))
    url = hub.push_folder(bundle, hub.PushTarget("me/demo", repo_type="space", private=False, space_target="zerogpu"), CANARY)

    assert url == "https://huggingface.co/spaces/me/demo"
    (payload,) = fake.create_payloads()
    assert payload["type"] == "space" and payload["sdk"] == "gradio" and payload["visibility"] == "public"
    assert payload["hardware"] == "zero-a10g"
    files = fake.committed_files()
    assert sorted(files) == ["README.md", "app.py", "requirements.txt"]
    assert b'sdk: "gradio"' in files["README.md"]
    _assert_token_only_in_authorization(fake)
    captured = capsys.readouterr()
    assert CANARY not in captured.out + captured.err + caplog.text
    hf_home = tmp_path / "hf_home"
    assert not any(CANARY.encode() in p.read_bytes() for p in hf_home.rglob("*") if p.is_file())


def test_adapter_push_sends_the_model_card_and_weights(mock_hub, run):
    fake = mock_hub()
    hub.push_folder(package_adapter(run), hub.PushTarget("me/adapter"), CANARY)
    (payload,) = fake.create_payloads()
    assert payload.get("type", "model") == "model" and payload["visibility"] == "private"
    files = fake.committed_files()
    assert {"README.md", "adapter_model.safetensors", "adapter_config.json", "inference.py"} <= set(files)
    assert b"library_name: peft" in files["README.md"]
    _assert_token_only_in_authorization(fake)


@pytest.mark.parametrize("status, message", [
    (401, "token invalid or lacks write access"),
    (403, "token invalid or lacks write access"),
    (402, "this Space type needs a paid plan or ZeroGPU"),
])
def test_refusals_say_what_to_do_and_keep_the_local_files(mock_hub, run, status, message):
    fake = mock_hub(create_statuses=[status])
    folder = package_adapter(run)
    with pytest.raises(hub.HubPushError, match=message) as caught:
        hub.push_folder(folder, hub.PushTarget("me/adapter"), CANARY)
    assert CANARY not in str(caught.value)
    assert "kept" in str(caught.value) and (folder / "adapter_model.safetensors").is_file()
    assert not [r for r in fake.requests if "/commit/" in r.url.path]


def test_existing_repository_409_continues_to_upload(mock_hub, run):
    fake = mock_hub(create_statuses=[409])
    hub.push_folder(package_adapter(run), hub.PushTarget("me/adapter"), CANARY)
    assert "README.md" in fake.committed_files()


def test_rate_limit_and_server_errors_are_retried(mock_hub, run):
    fake = mock_hub(create_statuses=[429, 503, 500])
    hub.push_folder(package_adapter(run), hub.PushTarget("me/adapter"), CANARY)
    assert len(fake.create_payloads()) == 4
    assert "README.md" in fake.committed_files()


def test_a_hub_that_keeps_failing_gives_up_with_a_clear_message(mock_hub, run):
    mock_hub(create_statuses=[502] * 4)
    with pytest.raises(hub.HubPushError, match=r"busy or failing \(HTTP 502\) after 3 retries"):
        hub.push_folder(package_adapter(run), hub.PushTarget("me/adapter"), CANARY)


def test_no_network_is_a_clear_offline_error(mock_hub, run):
    mock_hub(network_down=True)
    folder = package_adapter(run)
    with pytest.raises(OfflineError, match="the Hugging Face Hub could not be reached") as caught:
        hub.push_folder(folder, hub.PushTarget("me/adapter"), CANARY)
    assert CANARY not in str(caught.value) and folder.is_dir()


def test_offline_mode_attempts_nothing(run, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(OfflineError, match="HF_HUB_OFFLINE"):
        hub.push_folder(package_adapter(run), hub.PushTarget("me/adapter"), CANARY)


def test_bad_repo_id_and_missing_token_are_refused(run):
    with pytest.raises(ValueError, match="user/name"):
        hub.PushTarget("not a repo")
    with pytest.raises(ValueError, match="token"):
        hub.push_folder(package_adapter(run), hub.PushTarget("me/x"), "  ")


def test_merged_push_carries_a_transformers_model_card(mock_hub, run, workspace):
    from core.export.merge import merge_run
    from core.export.publish import push_run

    fake = mock_hub()
    merge_run(workspace, run)
    push_run(workspace, run.name, "merged", "me/merged", CANARY, private=True)
    files = fake.committed_files()
    assert b"library_name: transformers" in files["README.md"]
    assert "model.safetensors" in files and "chat_template.jinja" in files
    _assert_token_only_in_authorization(fake)


def test_backups_always_go_to_a_private_repository(mock_hub, run, workspace):
    from core.export.backup import backup_run
    from core.export.publish import export_folder, push_run

    fake = mock_hub()
    backup_run(workspace, run, export_folder(workspace, run.name, "backup"))
    push_run(workspace, run.name, "backup", "me/backups", CANARY, private=False)
    (payload,) = fake.create_payloads()
    assert payload["visibility"] == "private"
    assert list(fake.committed_files()) == ["run-1.chatsmith.tar"]
