"""Where a model family cannot go the whole way, the app says so before training, not after.

The mask lint refuses, on the data and before any model loads, a template that re-renders earlier
turns (Mistral v0.3 moves the system prompt into the last user turn) or refuses a role (Gemma 2 has
no system role); the pre-flight card and the run's log say when llama.cpp cannot convert the
architecture, so GGUF export would fail after training.
"""

from __future__ import annotations

import pytest

from core.devices import detect
from core.errors import BadInputError
from core.train import job, preflight
from tests.families import FAMILIES, build_family
from tests.train_helpers import FakeReporter, tiny_settings, write_version

SYSTEM_CHAT = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
               {"role": "assistant", "content": "Hello."}, {"role": "user", "content": "Name?"},
               {"role": "assistant", "content": "Kestrel."}]
GEMMA2_TEMPLATE = (  # Gemma 2's own opening: it has no system role
    "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}"
    "{% endif %}{% for message in messages %}{% set role = 'model' if message['role'] == 'assistant' "
    "else message['role'] %}{{ '<start_of_turn>' + role + '\\n' + message['content'] | trim + '<end_of_turn>\\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<start_of_turn>model\\n' }}{% endif %}"
)


def _run_with(workspace, model_dir, records):
    import json

    version = workspace.datasets / "v-system"
    version.mkdir(parents=True)
    (version / "train.jsonl").write_text("".join(json.dumps({"messages": r}) + "\n" for r in records))
    run_dir = workspace.runs / "refused"
    run_dir.mkdir()
    reporter = FakeReporter(run_dir)
    reporter.params = {"settings": tiny_settings(model_dir, version, eval_share=0.0).to_dict(),
                       "workspace": str(workspace.root)}
    return run_dir, reporter


@pytest.mark.parametrize("family,template,refusal", [
    ("mistral", None, "renders turn 3 differently once later turns follow"),
    ("gemma3", GEMMA2_TEMPLATE, "refuses this conversation: System role not supported"),
])
def test_a_template_that_cannot_take_the_data_stops_the_run_before_the_model_loads(
        family, template, refusal, workspace, tmp_path, default_tokenizer_dir):
    from dataclasses import replace

    chosen = replace(FAMILIES[family], template=template or FAMILIES[family].template)
    model_dir = build_family(chosen, default_tokenizer_dir, tmp_path / family)
    run_dir, reporter = _run_with(workspace, model_dir, [SYSTEM_CHAT] * 12)

    with pytest.raises(BadInputError, match=refusal):
        job.run(reporter)

    assert not any(line.startswith("model:") for line in reporter.lines)  # refused before loading the model
    assert not (run_dir / "checkpoints").exists() and not (run_dir / "adapter").exists()


def test_an_architecture_llama_cpp_cannot_convert_is_named_on_the_card_and_in_the_log(workspace, tmp_path,
                                                                                      default_tokenizer_dir):
    from transformers import AutoTokenizer, OPTConfig, OPTForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(default_tokenizer_dir)
    config = OPTConfig(vocab_size=len(tokenizer), hidden_size=32, ffn_dim=64, num_hidden_layers=2,
                       num_attention_heads=4, word_embed_proj_dim=32, max_position_embeddings=512,
                       pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
    model_dir = tmp_path / "opt"
    OPTForCausalLM(config).save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    settings = tiny_settings(model_dir, write_version(workspace.datasets / "v"), max_steps=1)

    card = preflight.card(preflight.estimate(settings, workspace, detect(workspace.root)))
    run_dir = workspace.runs / "opt-run"
    run_dir.mkdir()
    reporter = FakeReporter(run_dir)
    reporter.params = {"settings": settings.to_dict(), "workspace": str(workspace.root)}
    job.run(reporter)

    assert "GGUF export will not work" in card and "OPTForCausalLM" in card
    notes = [i for i, line in enumerate(reporter.lines) if "GGUF export will not work" in line]
    model_line = next(i for i, line in enumerate(reporter.lines) if line.startswith("model:"))
    assert notes and notes[0] < model_line  # said before the model loads, not when the export fails
    assert (run_dir / "adapter" / "adapter_model.safetensors").is_file()  # the run itself still works
