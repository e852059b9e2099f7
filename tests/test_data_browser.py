"""Data tab in a real browser: upload two samples in different formats, see formats and report, save."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.browser import browser_page, require_chromium, running_app, screenshot
from tests.conftest import ROOT

pytestmark = pytest.mark.browser
SAMPLES = ROOT / "assets" / "samples"


def test_upload_detect_run_preview_and_save(tmp_path):
    require_chromium()
    workspace = tmp_path / "workspace"
    with running_app(workspace) as url, browser_page() as page:
        page.goto(url)
        page.get_by_role("tab", name="Data").click()
        page.locator("#data-files input[type=file]").set_input_files(
            [str(SAMPLES / "identity_alpaca.json"), str(SAMPLES / "everyday_sharegpt.json")])
        detected = page.locator("#data-detected")
        detected.get_by_role("cell", name="sharegpt", exact=True).wait_for()
        detected.get_by_role("cell", name="alpaca", exact=True).wait_for()
        evidence = detected.inner_text()  # why each format was detected: "… sampled rows have instruction …"
        assert "sampled rows" in evidence and "instruction" in evidence and "output" in evidence
        page.locator("#data-cleaning").get_by_text("Cleaning").first.click()
        page.locator("#data-model textarea, #data-model input").first.fill("")  # estimate: no tokenizer load
        page.locator("#data-run").click()
        page.locator("#data-report >> text=conversations kept").wait_for(timeout=120_000)
        assert "128 conversations kept" in page.locator("#data-report").inner_text()
        page.locator("#data-preview-where >> text=/ 1").first.wait_for()
        assert "Kestrel" in page.locator("#data-preview-chat").inner_text()
        screenshot(page, "data-report")
        page.locator("#data-save").click()
        saved = page.locator("#data-saved-path textarea, #data-saved-path input").first
        page.wait_for_function("(el) => el.value.includes('kestrel-')", arg=saved.element_handle(), timeout=60_000)
        folder = Path(saved.input_value())
        assert folder.parent == workspace.resolve() / "datasets"
        assert json.loads((folder / "report.json").read_text())["kept"] == 128
        assert sorted(p.name for p in (workspace / "uploads").iterdir()) == [
            "everyday_sharegpt.json", "identity_alpaca.json"]
        screenshot(page, "data-saved")


def test_the_tab_shows_the_newest_saved_version_when_nothing_is_loaded(tmp_path):
    """After the guided first run (or any earlier session), opening the page shows the saved dataset."""
    from core.data import PrepareOptions, prepare, save_version
    from core.workspace import Workspace

    require_chromium()
    workspace = Workspace(tmp_path / "workspace").ensure()
    prepared = prepare([SAMPLES / "identity_alpaca.json"], PrepareOptions(model="", near_dup_threshold=0))
    folder = save_version(workspace, prepared, "Saved earlier")
    with running_app(workspace.root) as url, browser_page() as page:
        page.goto(url)
        page.get_by_role("tab", name="Data").click()
        page.locator("#data-report >> text=Data report: Saved earlier").wait_for(timeout=60_000)
        assert f"{prepared.report['kept']} conversations kept" in page.locator("#data-report").inner_text()
        assert folder.name in page.locator("#data-status").inner_text()
        saved = page.locator("#data-saved-path textarea, #data-saved-path input").first
        assert saved.input_value() == str(folder)
