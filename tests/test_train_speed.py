"""The padding-free speed-ups change nothing a user could measure but time: per-conversation attention
keeps the conversations of a packed row apart exactly, scoring only trained tokens gives the same
loss and the same gradients as scoring every position, and so does adding LoRA's update inside its
matrix product rather than after it."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from core.train import speed
from core.train.settings import TrainSettings

torch = pytest.importorskip("torch")


def _conversations(lengths, vocab):
    generator = torch.Generator().manual_seed(1)
    return [torch.randint(10, vocab, (n,), generator=generator) for n in lengths]


def _model(folder, implementation):
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    return AutoModelForCausalLM.from_pretrained(folder, attn_implementation=implementation, dtype=torch.float32)


def test_a_packed_row_computes_each_conversation_as_if_it_were_alone(tiny_model_dir):
    implementation = speed.attention_for(TrainSettings(model="m", dataset="d", batching="padding_free"))
    model = _model(tiny_model_dir, implementation).eval()
    conversations = _conversations((7, 12, 5), model.config.vocab_size)
    row = torch.cat(conversations)[None]
    positions = torch.cat([torch.arange(len(c)) for c in conversations])[None]

    with torch.no_grad():
        packed = model(input_ids=row, position_ids=positions).logits[0]
        alone = torch.cat([model(input_ids=c[None]).logits[0] for c in conversations])
    torch.testing.assert_close(packed, alone, rtol=1e-4, atol=1e-5)

    with torch.no_grad():  # and it is not a no-op: without the boundaries, later conversations see earlier ones
        leaky = model(input_ids=row).logits[0]
    assert not torch.allclose(leaky[7:], alone[7:], atol=1e-3)


def test_padded_batchings_keep_transformers_attention():
    for batching in ("length_grouped", "padded"):
        assert speed.attention_for(TrainSettings(model="m", dataset="d", batching=batching)) is None


def _fused_model(folder):
    import trl.trainer.utils as trl_utils

    model = _model(folder, "sdpa")
    trl_utils.add_fused_lm_head(model, outputs=("log_probs", "entropy", "is_top1"))  # as SFTTrainer does
    return model


@pytest.mark.parametrize("plain_logits_bytes", [speed.PLAIN_LOGITS_BYTES, 0])  # 0: TRL's chunked kernel
def test_the_fast_head_gives_the_same_loss_gradients_and_metrics(tiny_model_dir, monkeypatch, plain_logits_bytes):
    conversations = _conversations((9, 14), 1000)
    row = torch.cat(conversations)[None]
    positions = torch.cat([torch.arange(len(c)) for c in conversations])[None]
    labels = row.clone()
    labels[0, :5] = -100  # the first prompt
    labels[0, 9:15] = -100  # the second prompt

    def run(model):
        out = model(input_ids=row, position_ids=positions, labels=labels, fused_lm_head=True)
        out.loss.backward()
        return out.loss.detach(), model.model.layers[0].mlp.down_proj.weight.grad, out.entropy.sum(), \
            out.is_top1.sum()

    monkeypatch.setattr(speed, "PLAIN_LOGITS_BYTES", plain_logits_bytes)
    scored = []  # what TRL's head hands the app's function: proves it is on TRL's path, and only on its trainer's
    apply = speed._LogProbs.apply
    monkeypatch.setattr(speed._LogProbs, "apply",
                        lambda hidden, *rest: scored.append(len(hidden)) or apply(hidden, *rest))
    fast_model = _fused_model(tiny_model_dir)
    note = speed.fast_lm_head(SimpleNamespace(model=fast_model))
    assert note.startswith("TRL ") and "trained tokens only" in note, (
        f"TRL's fused forward no longer reads {speed.TRL_NAMES}: the CPU speed-up is off ({note})")
    fast = run(fast_model)
    stock = run(_fused_model(tiny_model_dir))  # a model of no app trainer keeps TRL's own path

    assert scored == [int((labels[0, 1:] != -100).sum())]  # called once, on the trained positions only
    torch.testing.assert_close(fast[0], stock[0])
    torch.testing.assert_close(fast[1], stock[1], rtol=1e-4, atol=1e-7)
    torch.testing.assert_close(fast[2], stock[2], rtol=1e-4, atol=1e-5)  # the logged entropy
    assert fast[3] == stock[3]  # and token accuracy


def test_the_speed_up_leaves_trl_itself_untouched_and_says_when_it_cannot_apply(tiny_model_dir):
    import trl.trainer.utils as trl_utils
    from trl.kernels import ChunkedLogProbFunction
    from trl.kernels.chunked_logprob import _use_triton

    speed.fast_lm_head(SimpleNamespace(model=_fused_model(tiny_model_dir)))
    assert trl_utils._use_triton is _use_triton and trl_utils._ChunkedLogProbFunction is ChunkedLogProbFunction

    plain = _model(tiny_model_dir, "sdpa")  # no fused head: nothing to speed up, and nothing is changed
    forward = plain.forward
    assert "TRL's own is used" in speed.fast_lm_head(SimpleNamespace(model=plain))
    assert plain.forward == forward


def _lora_model(folder, dropout=0.0):
    from peft import LoraConfig, get_peft_model

    model = get_peft_model(_model(folder, "sdpa"), LoraConfig(r=4, lora_alpha=8, lora_dropout=dropout,
                                                              target_modules="all-linear"))
    with torch.no_grad():  # a trained adapter: B starts at zero, which would hide a wrong scaling or sum
        for name, parameter in model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0, 0.05, generator=torch.Generator().manual_seed(len(name)))
    return model


def _counting_peft_path(model):
    """`model`, noting in `model.peft_path` each time PEFT's own LoRA forward runs (it calls `lora_B`)."""
    model.peft_path = []
    for name, module in model.named_modules():
        if name.endswith("lora_B.default"):
            module.register_forward_hook(lambda *_: model.peft_path.append(1))
    return model


def _loss_and_gradients(model, row):
    model.zero_grad()
    out = model(input_ids=row, labels=row)
    out.loss.backward()
    return out.loss.detach(), [p.grad for p in model.parameters() if p.requires_grad], getattr(model, "peft_path", [])


def test_lora_updated_inside_the_matrix_product_trains_exactly_like_peft(tiny_model_dir):
    row = _conversations((21,), 1000)[0][None]
    fast_model = _lora_model(tiny_model_dir)
    note = speed.fast_lora(fast_model)
    adapted = sum(type(m).__name__ == "Linear" and hasattr(m, "lora_A") for m in fast_model.modules())
    assert note == f"LoRA's update added inside its matrix product in {adapted} layers" and adapted > 0
    fast = _loss_and_gradients(_counting_peft_path(fast_model), row)
    stock = _loss_and_gradients(_counting_peft_path(_lora_model(tiny_model_dir)), row)

    assert fast_model.peft_path == [] and len(stock[2]) == adapted  # PEFT's forward ran in no layer, then in each
    torch.testing.assert_close(fast[0], stock[0])
    for mine, peft_own in zip(fast[1], stock[1], strict=True):
        torch.testing.assert_close(mine, peft_own, rtol=1e-4, atol=1e-7)
    with fast_model.disable_adapter(), torch.no_grad():  # a preference run's reference model: the base alone
        base = fast_model(input_ids=row).logits
        torch.testing.assert_close(base, _model(tiny_model_dir, "sdpa")(input_ids=row).logits)


def test_lora_with_dropout_keeps_peft_forward(tiny_model_dir):
    row = _conversations((21,), 1000)[0][None]
    results = []
    for fast in (True, False):
        model = _lora_model(tiny_model_dir, dropout=0.3).train()
        if fast:
            speed.fast_lora(model)
        torch.manual_seed(5)  # the same dropout masks in both
        results.append(_loss_and_gradients(model, row))
    torch.testing.assert_close(results[0][0], results[1][0])
    assert not torch.equal(results[0][0], _loss_and_gradients(_lora_model(tiny_model_dir).train(), row)[0])
