"""The padding-free speed-ups change nothing a user could measure but time: per-conversation attention
keeps the conversations of a packed row apart exactly, and scoring only trained tokens gives the same
loss and the same gradients as scoring every position."""

from __future__ import annotations

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


@pytest.mark.parametrize("plain_logits_bytes", [speed.PLAIN_LOGITS_BYTES, 0])  # 0: TRL's chunked kernel
def test_the_fast_head_gives_the_same_loss_gradients_and_metrics(tiny_model_dir, monkeypatch, plain_logits_bytes):
    import trl.trainer.utils as trl_utils

    conversations = _conversations((9, 14), 1000)
    row = torch.cat(conversations)[None]
    positions = torch.cat([torch.arange(len(c)) for c in conversations])[None]
    labels = row.clone()
    labels[0, :5] = -100  # the first prompt
    labels[0, 9:15] = -100  # the second prompt

    def run():
        model = _model(tiny_model_dir, "sdpa")
        trl_utils.add_fused_lm_head(model, outputs=("log_probs", "entropy", "is_top1"))  # as SFTTrainer does
        out = model(input_ids=row, position_ids=positions, labels=labels, fused_lm_head=True)
        out.loss.backward()
        return out.loss.detach(), model.model.layers[0].mlp.down_proj.weight.grad, out.entropy.sum(), \
            out.is_top1.sum()

    # TRL's own CPU path (every position, chunked), whatever an earlier in-process run patched; restored after
    from trl.kernels import ChunkedLogProbFunction
    from trl.kernels.chunked_logprob import _use_triton

    monkeypatch.setattr(trl_utils, "_use_triton", _use_triton)
    monkeypatch.setattr(trl_utils, "_ChunkedLogProbFunction", ChunkedLogProbFunction)
    monkeypatch.setattr(speed, "PLAIN_LOGITS_BYTES", plain_logits_bytes)
    stock = run()
    speed.fast_lm_head()
    scored = []  # what TRL's head hands the patched function: proves both patches are on TRL's path
    apply = speed._LogProbs.apply
    monkeypatch.setattr(speed._LogProbs, "apply",
                        lambda hidden, *rest: scored.append(len(hidden)) or apply(hidden, *rest))
    fast = run()

    assert scored == [int((labels[0, 1:] != -100).sum())]  # called once, on the trained positions only

    torch.testing.assert_close(fast[0], stock[0])
    torch.testing.assert_close(fast[1], stock[1], rtol=1e-4, atol=1e-7)
    torch.testing.assert_close(fast[2], stock[2], rtol=1e-4, atol=1e-5)  # the logged entropy
    assert fast[3] == stock[3]  # and token accuracy
