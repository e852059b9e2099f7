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
def test_gguf_export_from_the_tab(workspace, tiny_model_dir):
    make_run(workspace, tiny_model_dir)
    with running_app(workspace.root) as url, browser_page() as page:
        page.goto(url)
        page.get_by_role("tab", name="Export").click()
        page.locator("#export-run input").click()
        page.get_by_role("option", name="run-1").click()
        page.wait_for_function("() => document.querySelector('#export-quant') &&"
                               " document.querySelector('#export-quant').innerText.includes('recommended')")
        assert page.locator("#export-quant input[type=checkbox]:checked").count() == 1
        assert "Hub pushes are disabled" in page.locator("#export-hub-note").inner_text()
        assert page.locator("#export-hub-button").is_disabled()
        page.locator("#export-gguf-button").click()
        page.wait_for_function("() => document.querySelector('#export-status').innerText.includes('succeeded')"
                               " || document.querySelector('#export-status').innerText.includes('failed')",
                               timeout=400_000)
        screenshot(page, "export-tab-gguf")
        assert "succeeded" in page.locator("#export-status").inner_text()
    assert (workspace.exports / "run-1" / "gguf" / "run-1-Q8_0.gguf").is_file()
