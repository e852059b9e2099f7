"""The padding-free speed-ups change nothing a user could measure but time: per-conversation attention
keeps the conversations of a packed row apart exactly, and scoring only trained tokens gives the same
loss and the same gradients as scoring every position."""

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
