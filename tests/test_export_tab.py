"""The Export tab: what it offers for a run, and a browser run of the GGUF export through the job runner."""

from __future__ import annotations

import pytest

from core.devices import DeviceInfo, capabilities
from core.export import choices
from tests.browser import browser_page, running_app, screenshot
from tests.export_helpers import make_run


def test_quant_choices_show_sizes_and_preselect_the_recommendation(workspace, tiny_model_dir):
    make_run(workspace, tiny_model_dir)
    labels, selected, reason = choices.quant_options(workspace, "run-1")
    assert [value for _, value in labels] == ["F16", "Q8_0", "Q5_K_M", "Q4_K_M"]
    assert all(" MB" in label for label, _ in labels)
    assert selected == ["Q8_0"] and "recommended" in dict((v, l) for l, v in labels)["Q8_0"]
    assert "small" in reason


def test_push_controls_are_disabled_offline_with_the_reason():
    info = DeviceInfo(kind="cpu", name="cpu", accelerator_memory_gb=None, compute_capability=None, bf16=False,
                      cpu_cores=2, ram_gb=8, bitsandbytes=False, llama_cpp=True, free_disk_gb=50)
    gate = capabilities(info, offline=True).hub
    assert not gate.ok and "HF_HUB_OFFLINE" in gate.reason
    assert capabilities(info, offline=False).hub.ok


@pytest.mark.browser
def test_gguf_export_from_the_tab_checks_it_and_offers_every_file(workspace, tiny_model_dir, tmp_path):
    """Export through the job runner, then what a user reads and takes away: the check's verdict in words
    (it gates the recommendation), a log without library chatter, and downloads through the browser."""
    make_run(workspace, tiny_model_dir)
    with running_app(workspace.root) as url, browser_page() as page:
        page.goto(url)
        page.get_by_role("tab", name="Export").click()
        _pick(page, "#export-run", "run-1")
        page.wait_for_function("() => document.querySelector('#export-quant') &&"
                               " document.querySelector('#export-quant').innerText.includes('recommended')")
        assert page.locator("#export-quant input[type=checkbox]:checked").count() == 1
        assert "Hub pushes are disabled" in page.locator("#export-hub-note").inner_text()
        assert page.locator("#export-hub-button").is_disabled()
        page.locator("#export-gguf-button").click()
        page.wait_for_function("() => document.querySelector('#export-status').innerText.includes('succeeded')"
                               " || document.querySelector('#export-status').innerText.includes('failed')",
                               timeout=400_000)
        status = page.locator("#export-status").inner_text()
        assert "succeeded" in status
        # The tiny random model's Q8_0 leaves the merged model's greedy answer within a few tokens (measured:
        # token 4 of prompt 2), so the check must withdraw the size-based recommendation, in words.
        assert "Q8_0 is not recommended: its greedy answer to prompt" in status
        page.wait_for_function("() => document.querySelector('#export-quant-reason').innerText"
                               ".includes('Q8_0 is not recommended')")
        checked = page.locator("#export-quant input[type=checkbox]:checked")
        assert checked.count() == 1 and checked.first.evaluate("box => box.closest('label').innerText")\
            .startswith("F16")
        table = page.locator("#export-roundtrip").inner_text()
        assert "None" not in table and "agrees on all prompts" in table and "diverges at token" in table
        log = page.locator("#export-log textarea").input_value()
        assert "Quantising to Q8_0 from F32" in log and "not recommended" in log
        assert "Warning" not in log and "gemm_4bit_forward" not in log and "llama_model" not in log
        screenshot(page, "export-tab-gguf")
        _download_each(page, workspace, tmp_path)
    assert (workspace.exports / "run-1" / "gguf" / "run-1-Q8_0.gguf").is_file()


def _pick(page, elem_id: str, option) -> None:
    page.locator(f"{elem_id} input").click()
    page.get_by_role("option", name=option).click()


def _download(page, tmp_path, name: str):
    page.locator("#export-download-prepare").click()
    button = page.locator("#export-download-button")
    page.wait_for_function(f"() => document.querySelector('#export-download-button')?.innerText.includes('{name}')",
                           timeout=120_000)
    with page.expect_download() as info:
        button.click()
    path = tmp_path / info.value.suggested_filename
    info.value.save_as(path)
    return path


def _download_each(page, workspace, tmp_path) -> None:
    import re
    import zipfile

    gguf_dir = workspace.exports / "run-1" / "gguf"
    page.wait_for_function("() => document.querySelector('#export-ollama').innerText.includes('ollama create')")
    assert "ollama create run-1-f16 -f run-1-F16.Modelfile" in page.locator("#export-ollama").inner_text()
    assert "lms import run-1-F16.gguf" in page.locator("#export-lmstudio").inner_text()
    _pick(page, "#export-download-what", re.compile("GGUF · run-1-Q8_0.gguf"))
    assert _download(page, tmp_path, "run-1-Q8_0.gguf").read_bytes() == (gguf_dir / "run-1-Q8_0.gguf").read_bytes()
    _pick(page, "#export-download-what", re.compile("Modelfile · run-1-Q8_0"))
    assert "PARAMETER temperature 0.7" in _download(page, tmp_path, "run-1-Q8_0.Modelfile").read_text()
    _pick(page, "#export-download-what", re.compile("Merged model"))
    with zipfile.ZipFile(_download(page, tmp_path, "merged.zip")) as archive:
        assert "merged/config.json" in archive.namelist()
    assert "is ready" in page.locator("#export-download-note").inner_text()
