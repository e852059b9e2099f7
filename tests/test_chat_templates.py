"""Chat templates: hostile ones are blocked or timed out at load; honest ones render like transformers."""

from __future__ import annotations

import json
import shutil
import time

import pytest

from core import inference, templates
from core.errors import UnsafeModelError
from core.inference import ModelChoice
from tests.test_train_masks import MARKED_CHATML

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


GROWN = "{% set ns = namespace(x='a' * 999999) %}{% for i in range(4) %}{% set ns.x = ns.x OP ns.x %}{% endfor %}"


@pytest.mark.parametrize("template", [
    "{{ 'a'|center(100000000) }}", "{{ 'a'|indent(100000000, true) }}", "{{ '%100000000s'|format('a') }}",
    "{{ ('a' * 999999)|wordwrap(1, wrapstring='x' * 99) }}", "{{ ('a' * 999999)|replace('', 'bbbbbbbbbbb') }}",
    "{% set big = 'x' * 999999 %}{{ [big, big, big, big, big, big, big, big]|join('-') }}",
    "{{ ['a', 'b']|join('x' * 999999) }}", "{{ [1]|batch(100000000, 0)|list|length }}",
    "{{ 'a'.center(100000000) }}", "{{ 'a'.ljust(100000000) }}", "{{ '{:>100000000}'.format('a') }}",
    "{{ '%100000000s' % 'a' }}", GROWN.replace("OP", "~"), GROWN.replace("OP", "+"),
    "{% for i in range(200) %}{{ 'x' * 999999 }}{% endfor %}",
])
def test_string_building_is_refused_before_it_allocates(template):
    import tracemalloc

    tracemalloc.start()
    try:
        with pytest.raises(UnsafeModelError, match="blocked .*over the budget"):
            templates.render(template, MESSAGES)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20 * 2**20  # refused from an estimate: the 16-100 MB value was never built


MATCHES_TRANSFORMERS = [
    # tojson as transformers renders it: no HTML escaping, non-ASCII kept, its keyword arguments honoured
    "{% for m in messages %}{{ m|tojson }}\n{{ m|tojson(indent=2, sort_keys=true) }}{% endfor %}",
    "{{ dict(a=1, b='<&>')|tojson }}{% set ns = namespace(n=0) %}{% for m in messages %}{% set ns.n = ns.n + 1 %}"
    "{% endfor %}{{ ns.n }}",
    MARKED_CHATML,  # a generation-marked template, as those that support assistant-only training write it
]
TRICKY = [{"role": "system", "content": "Answer in <b>bold</b> & 'quotes'."},
          {"role": "user", "content": "Grüß dich, 你好"},
          {"role": "assistant", "content": 'He said "hi" </s>'}, {"role": "user", "content": "Bye"}]


@pytest.mark.parametrize("template", MATCHES_TRANSFORMERS)
def test_templates_render_exactly_as_in_transformers(template):
    from transformers.utils.chat_template_utils import render_jinja_template

    (expected,), _ = render_jinja_template([TRICKY], chat_template=template, add_generation_prompt=True,
                                           bos_token="<s>", eos_token="</s>")
    assert templates.render(template, TRICKY, bos_token="<s>", eos_token="</s>") == expected
    assert "&lt;" not in expected


# Content through tojson, as templates that quote messages or tools write it: HTML-looking text must reach
# the model unescaped, exactly as transformers renders it.
TOJSON_CHATML = ("{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' }}{{ message['content']|tojson }}"
                 "{{ '<|im_end|>\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")


@pytest.mark.parametrize("template", [MARKED_CHATML, TOJSON_CHATML], ids=["generation", "tojson"])
def test_a_generation_marked_or_tojson_template_chats(template, tiny_model_dir, tmp_path, workspace):
    from transformers import AutoTokenizer

    folder = tmp_path / "templated"
    shutil.copytree(tiny_model_dir, folder)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    tokenizer.chat_template = template
    tokenizer.save_pretrained(folder)
    backend = inference.open_backend(ModelChoice(kind="base", model=str(folder)), workspace)
    expected = tokenizer.apply_chat_template(TRICKY, tokenize=True, add_generation_prompt=True)
    expected = expected if isinstance(expected, list) else expected["input_ids"]
    assert backend.base.prompt_ids(TRICKY) == list(expected)
    assert "".join(backend.stream(TRICKY, inference.GenerationSettings(max_new_tokens=4, temperature=0)))
