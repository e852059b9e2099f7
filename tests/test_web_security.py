"""The web surface against a live server (a test client would normalise the paths).

The faults of docs/reliability.md, "Web surface"."""

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

from tests.browser import ROOT, free_port, running_app, running_server

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


def _post(url, data: bytes, headers: dict):
    request = urllib.request.Request(url, data=data, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def test_cross_site_requests_to_the_api_do_no_work(live):
    """What any web page can make a visitor's browser send to 127.0.0.1: a "simple" text/plain POST needs
    no preflight; a JSON one from a foreign Origin. Neither generates."""
    url, _, _ = live
    body = json.dumps({"model": "default", "max_tokens": 4, "messages": [{"role": "user", "content": "Hi"}]}).encode()
    status, _, answer = _post(f"{url}/v1/chat/completions", body, {"Content-Type": "text/plain"})
    assert status == 415 and b"application/json" in answer
    status, _, answer = _post(f"{url}/v1/chat/completions", body,
                              {"Content-Type": "application/json", "Origin": "http://evil.example"})
    assert status == 403 and b"other web sites" in answer
    assert _get(f"{url}/v1/models", headers={"Origin": "http://evil.example"})[0] == 403
    status, _, answer = _post(f"{url}/v1/chat/completions", body,
                              {"Content-Type": "application/json", "Origin": url})  # the app's own /web/ page
    assert status == 200 and json.loads(answer)["choices"][0]["message"]["content"]


def _call(app, endpoint: str, *args):
    """A Gradio endpoint called as a script would: the given inputs, None for the others without a default."""
    parameters = app.view_api(return_format="dict", print_info=False)["named_endpoints"][endpoint]["parameters"]
    missing = {p["parameter_name"]: None for p in parameters[len(args):] if not p.get("parameter_has_default")}
    return app.predict(*args, **missing, api_name=endpoint)


def test_locked_mode_keeps_every_client_name_inside_the_workspace(tmp_path, monkeypatch):
    """On 0.0.0.0 without --auth, through the app's own API as any visitor could call it."""
    from gradio_client import Client, handle_file

    workspace, secret_dir = tmp_path / "area" / "ws", tmp_path / "secret"
    secret_dir.mkdir()
    secret = tmp_path / "server-secrets.jsonl"
    secret.write_text(json.dumps({"instruction": "What is the root password?", "output": "hunter2"}) + "\n")
    monkeypatch.setenv("CHATSMITH_MAX_UPLOADS", "2")
    port = free_port()
    command = [sys.executable, "app.py", "--workspace", str(workspace), "--port", str(port), "--host", "0.0.0.0"]
    with running_server(command, ROOT, port, tmp_path / "app.log") as url:
        app = Client(url, verbose=False)
        for endpoint in ("/on_inputs_changed", "/on_run_clicked", "/build_collection"):  # a server path, by anyone
            answer = json.dumps(_call(app, endpoint, [], str(secret)), default=str)
            assert "is disabled" in answer and "upload them instead" in answer and "hunter2" not in answer
        note, _ = _call(app, "/on_generate_click", "fsdp", 2, "../../X")
        assert "not a name inside the workspace" in note and not (tmp_path / "area" / "X").exists()
        assert "not a name inside the workspace" in app.predict("../../secret", api_name="/on_stop_click")
        assert list(secret_dir.iterdir()) == []
        card = _call(app, "/on_check_click", 0.3, "EUR")[0]
        assert "pre-flight check is disabled" in card
        note = app.predict("default-transformers", api_name="/on_model_change")[0]  # Chat's model picker
        assert "Preparing the default model for transformers (540 MB) is disabled for visitors" in note
        request = {"model": "default-transformers", "messages": [{"role": "user", "content": "Hi"}]}
        status, _, body = _post(f"{url}/v1/chat/completions", json.dumps(request).encode(),
                                {"Content-Type": "application/json"})
        assert status == 403 and "disabled for visitors" in body.decode()
        assert not any((workspace / "models").iterdir())  # the 540 MB default model was not materialised
        uploads = []
        for index in range(3):
            upload = tmp_path / f"upload-{index}.jsonl"
            upload.write_text(json.dumps({"instruction": f"Q{index}", "output": "A"}) + "\n")
            uploads.append(app.predict([handle_file(str(upload))], "", api_name="/on_inputs_changed")[0])
        assert "alpaca" in uploads[0] and "alpaca" in uploads[1]
        assert "already keeps 2 uploads; the limit is 2" in uploads[2]
    assert sorted(p.name for p in (workspace / "uploads").iterdir()) == ["upload-0.jsonl", "upload-1.jsonl"]


def _form_login(opener, url: str, user: str, password: str):
    data = urllib.parse.urlencode({"username": user, "password": password}).encode()
    try:
        with opener.open(urllib.request.Request(f"{url}/login", data=data, method="POST"), timeout=30) as response:
            return response.status, response.headers
    except urllib.error.HTTPError as error:
        return error.code, error.headers


def test_password_guessing_is_slowed_and_the_login_cookie_opens_the_api(tmp_path):
    import http.cookiejar
    import time

    with running_app(tmp_path / "ws", ["--auth", "alice:wonderland"]) as url:
        jar = http.cookiejar.CookieJar()
        browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        answers = [_form_login(browser, url, "alice", f"guess{n}") for n in range(8)]
        statuses = [status for status, _ in answers]
        assert statuses[:6] == [400] * 6 and statuses[6:] == [429, 429], statuses  # five free, then waits
        wait = int(answers[-1][1]["Retry-After"])
        assert _form_login(browser, url, "alice", "wonderland")[0] == 429  # the right password waits too
        time.sleep(wait)
        assert _form_login(browser, url, "alice", "wonderland")[0] == 200

        # Gradio's own login cookie opens the API beside the UI; a forged one does not.
        status, _, body = _get_with(browser, f"{url}/v1/models")
        assert status == 200 and json.loads(body)["data"][0]["id"] == "default"
        forged = {"Cookie": "; ".join(f"{cookie.name}=forged" for cookie in jar)}
        assert _get(f"{url}/v1/models", headers=forged)[0] == 401

        # Bearer guesses count against the same address: a few, then 429 before any check.
        bearer = [_get(f"{url}/v1/models", headers={"Authorization": f"Bearer alice:guess{n}"})[0] for n in range(8)]
        assert bearer[:6] == [401] * 6 and 429 in bearer[6:], bearer


def _get_with(opener, url):
    try:
        with opener.open(url, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


@pytest.mark.parametrize("argv,env", [(["--auth", ":"], {}), (["--auth", "alice"], {}), (["--auth", "alice:"], {}),
                                      ([], {"CHATSMITH_AUTH": ":"})])
def test_a_half_given_login_stops_the_app_at_start(tmp_path, argv, env):
    result = subprocess.run([sys.executable, "app.py", "--workspace", str(tmp_path / "ws"), "--port", str(free_port()),
                             *argv], cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "must be USER:PASSWORD with neither part empty" in result.stderr
    assert "The app did not start" in result.stderr and "Traceback" not in result.stderr


def test_the_api_login_check_fails_closed_if_gradio_renames_its_internals():
    from types import SimpleNamespace

    from core import access

    check = access.login_check({"alice": "wonderland"})

    def request(app, authorization="", cookies=None):
        return SimpleNamespace(app=app, headers={"authorization": authorization} if authorization else {},
                               cookies=cookies or {})

    renamed = SimpleNamespace(sessions={"t0k": "alice"}, cookie_key="abc")  # no `auth`, `tokens`, `cookie_id`
    assert not check(request(renamed, cookies={"access-token-abc": "t0k", "access-token-unsecure-abc": "t0k"}))
    assert not check(request(SimpleNamespace(tokens=[("t0k", "alice")], cookie_id=None),
                             cookies={"access-token-None": "t0k"}))
    assert not check(request(SimpleNamespace(tokens={"t0k": "mallory"}, cookie_id="abc"),
                             cookies={"access-token-abc": "t0k"}))  # a user that --auth never named
    assert check(request(SimpleNamespace(tokens={"t0k": "alice"}, cookie_id="abc"),
                         cookies={"access-token-unsecure-abc": "t0k"}))
    assert check(request(renamed, "Bearer alice:wonderland")) and not check(request(renamed, "Bearer alice:x"))
    assert access.login_check(None)(request(renamed))  # no --auth given: open by the app's own settings


def test_gradio_still_keeps_logins_where_the_api_reads_them():
    """The cookie branch reads Gradio internals; if a release moves them, API cookies stop working (closed),
    and this test says so before users do."""
    from gradio.routes import App

    app = App()
    assert isinstance(app.tokens, dict) and isinstance(app.cookie_id, str) and app.cookie_id
