"""Chat templates (M3): hostile ones are blocked or timed out at load; honest ones render like transformers."""

from __future__ import annotations

import json
import shutil
import time

import pytest

from core import inference, templates
from core.errors import UnsafeModelError
from core.inference import ModelChoice

MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "Bye"}]
SSTI = "{{ cycler.__init__.__globals__.os.popen('touch pwned').read() }}"
ENDLESS = ("{% set x = range(99999)|list %}{% for a in x %}{% for b in x %}{% for c in x %}"
           "{% endfor %}{% endfor %}{% endfor %}")


def test_ssti_is_blocked_and_runs_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UnsafeModelError, match="unsafe and was blocked"):
        templates.render(SSTI, MESSAGES)
    assert not (tmp_path / "pwned").exists()


def test_endless_loop_is_stopped_at_the_deadline():
    # Run to its end this loop would take days; the error says the watchdog cut it off.
    with pytest.raises(UnsafeModelError, match="longer than 0.5 s"):
        templates.render(ENDLESS, MESSAGES, timeout_s=0.5)


@pytest.mark.parametrize("template", ["{{ 'x' * 10**9 }}", "{{ [1] * 10**8 }}", "{{ 9 ** 999999 }}"])
def test_oversized_values_are_refused_before_they_are_built(template):
    with pytest.raises(UnsafeModelError, match="blocked"):
        templates.render(template, MESSAGES)


def test_render_matches_transformers_apply_chat_template(default_tokenizer_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(default_tokenizer_dir)
    expected = tokenizer.apply_chat_template(MESSAGES, tokenize=False, add_generation_prompt=True)
    assert templates.render(tokenizer.chat_template, MESSAGES, bos_token=tokenizer.bos_token,
                            eos_token=tokenizer.eos_token) == expected
    assert expected.endswith("<|im_start|>assistant\n")


def test_deadline_leaves_the_thread_usable_afterwards():
    with pytest.raises(UnsafeModelError):
        templates.render(ENDLESS, MESSAGES, timeout_s=0.2)
    time.sleep(0.3)  # a late watchdog would strike here if it were not cancelled
    assert templates.render("{{ messages[0].content }}", MESSAGES) == "Be brief."


@pytest.mark.parametrize("template", [SSTI, ENDLESS])
def test_model_with_hostile_tokenizer_template_is_refused_at_load(template, tiny_model_dir, tmp_path,
                                                                   workspace, monkeypatch):
    monkeypatch.setattr(templates, "RENDER_TIMEOUT_S", 0.5)
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "hostile"
    shutil.copytree(tiny_model_dir, folder)
    config_path = folder / "tokenizer_config.json"
    config = json.loads(config_path.read_text())
    config["chat_template"] = template
    config_path.write_text(json.dumps(config))
    (folder / "chat_template.jinja").unlink(missing_ok=True)
    with pytest.raises(UnsafeModelError):
        inference.open_backend(ModelChoice(kind="base", model=str(folder)), workspace)
    assert not (tmp_path / "pwned").exists()
