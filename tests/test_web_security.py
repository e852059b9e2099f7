"""The web surface against a live server (a test client would normalise the paths): G1, G2, G3, G5, G7."""

import json
import os
import subprocess
import urllib.error
import urllib.request

import pytest

from tests.browser import running_app

pytestmark = pytest.mark.browser  # starts the real app


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    root = tmp_path_factory.mktemp("live")
    workspace, temp = root / "workspace", root / "gradio_tmp"
    workspace.mkdir()
    (workspace / ".env").write_text("HF_TOKEN=hf_CANARYdonotleak\n")
    os.environ["GRADIO_TEMP_DIR"], os.environ["CHATSMITH_MAX_UPLOAD"] = str(temp), "1mb"
    try:
        with running_app(workspace) as url:
            yield url, workspace, temp
    finally:
        del os.environ["GRADIO_TEMP_DIR"], os.environ["CHATSMITH_MAX_UPLOAD"]


def _get(url, headers=None):
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def _upload(url, path, filename=None):
    command = ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-F",
               f"files=@{path}" + (f";filename={filename}" if filename else ""), f"{url}/gradio_api/upload"]
    return int(subprocess.run(command, capture_output=True, text=True, timeout=60).stdout)


@pytest.mark.parametrize("path", ["/etc/passwd", "../x", "..%2f..%2fetc%2fpasswd", "{ws}/.env",
                                  "{ws}/ratings.sqlite", "{ws}", "app.py"])
def test_files_outside_what_the_app_returned_are_not_served(live, path):
    url, workspace, _ = live
    status, _, body = _get(f"{url}/gradio_api/file={path.format(ws=workspace)}")
    assert status in (403, 404)
    assert b"root:" not in body and b"CANARY" not in body and b"SQLite" not in body


def test_oversized_upload_and_huge_file_name_are_refused_and_leave_nothing(live, tmp_path):
    url, _, temp = live
    big = tmp_path / "big.jsonl"
    big.write_bytes(b"x" * (2 * 2**20))
    assert _upload(url, big) == 413
    small = tmp_path / "ok.json"
    small.write_text("[]")
    assert _upload(url, small, filename="n" * 5000 + ".json") == 413
    leftovers = [p for p in temp.rglob("*") if p.is_file() and p.suffix in {".jsonl", ".json"}]
    assert leftovers == []


def test_uploaded_html_is_never_served_inline(live, tmp_path):
    url, _, _ = live
    page = tmp_path / "evil.html"
    page.write_text("<html><script>alert(1)</script></html>")
    out = subprocess.run(["curl", "-s", "-F", f"files=@{page}", f"{url}/gradio_api/upload"],
                         capture_output=True, text=True, timeout=60).stdout
    served = json.loads(out)[0]
    status, headers, _ = _get(f"{url}/gradio_api/file={served}")
    headers = {key.lower(): value for key, value in headers.items()}
    assert status == 200
    assert "text/html" not in headers["content-type"]
    assert headers["content-disposition"].startswith("attachment")


def test_no_permissive_cors_for_a_foreign_origin(live):
    url, _, _ = live
    _, headers, _ = _get(f"{url}/gradio_api/info", headers={"Origin": "http://evil.example"})
    allowed = {key.lower(): value for key, value in headers.items()}.get("access-control-allow-origin")
    assert allowed not in ("*", "http://evil.example")


def test_auth_protects_the_api(tmp_path):
    with running_app(tmp_path / "ws", ["--auth", "alice:wonderland"]) as url:
        status, _, _ = _get(f"{url}/gradio_api/info")
        assert status == 401


def test_exposed_without_auth_shows_the_lock(tmp_path):
    from tests.browser import browser_page

    with running_app(tmp_path / "ws", ["--host", "0.0.0.0"]) as url, browser_page() as page:
        page.goto(url.replace("127.0.0.1", "localhost"))
        page.get_by_text("Training, export and Hub pushes are disabled").wait_for()
