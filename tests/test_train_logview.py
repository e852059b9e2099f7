"""The Train tab's log as a person reads it, from lines a real run wrote to its log.txt."""

from __future__ import annotations

from core.train.logview import readable

# A real two-step run's log.txt (the CPU preset on the default model), cut to the lines that matter.
REAL_LOG = """\
starting run 20261130-214052-default-kestrel: default on /ws/datasets/kestrel
Failed to load CPU gemm_4bit_forward from kernels-community: No module named 'kernels'. Please make sure you already `pip install kernels`
data: 122 training conversations, 10706 tokens (5733 trained), longest 137; 0 cut to 512, 0 dropped with nothing to learn; 6 for eval
Loading weights:   0%|          | 0/272 [00:00<?, ?it/s]Loading weights: 100%|██████████| 272/272 [00:00<00:00, 8679.17it/s]
/venv/lib/python3.11/site-packages/transformers/training_args.py:1541: FutureWarning: `gradient_checkpointing` is deprecated
  warnings.warn(f"`{old}` is deprecated and will be removed in v6. Use `{new}` instead.", FutureWarning)
model: 139.4M parameters, 4.88M trainable (LoRA r=16) · cpu · fp32
step 1/3: epoch=0.0645, loss=3.427, learning_rate=0, grad_norm=1.114, tokens_per_s=171, memory_gb=1.942, power_w=65
{'loss': '3.427', 'grad_norm': '1.114', 'learning_rate': '0', 'entropy': '2.654', 'mean_token_accuracy': '0.4006', 'num_tokens': '682', 'epoch': '0.06452'}
step 2/3: epoch=0.129, loss=3.217, learning_rate=0.0002, grad_norm=0.9, tokens_per_s=109.9, step_s=3.125, memory_gb=1.929, power_w=65
{'loss': '3.217', 'grad_norm': '0.9', 'learning_rate': '0.0002', 'entropy': '2.619', 'mean_token_accuracy': '0.3721', 'num_tokens': '1391', 'epoch': '0.129'}
step 3/3: epoch=0.1935, eval_loss=2.79, memory_gb=1.963, power_w=65
{'eval_loss': '2.79', 'eval_runtime': '1.867', 'eval_samples_per_second': '3.214', 'eval_steps_per_second': '1.071', 'eval_entropy': '2.629', 'eval_mean_token_accuracy': '0.4057', 'eval_num_tokens': '2022', 'epoch': '0.1935'}
step 3/3: epoch=0.1935, memory_gb=1.963, power_w=65
{'train_runtime': '19.51', 'train_samples_per_second': '1.23', 'train_steps_per_second': '0.154', 'train_loss': '3.154', 'epoch': '0.1935'}
Done: 3 steps in 20 s; adapter saved.
"""


def test_a_real_run_log_reads_as_plain_lines_without_dicts_or_library_chatter():
    shown = readable(REAL_LOG, lines=50).splitlines()

    assert shown == [
        "starting run 20261130-214052-default-kestrel: default on /ws/datasets/kestrel",
        "data: 122 training conversations, 10706 tokens (5733 trained), longest 137; 0 cut to 512, "
        "0 dropped with nothing to learn; 6 for eval",
        "model: 139.4M parameters, 4.88M trainable (LoRA r=16) · cpu · fp32",
        "step 1/3 · loss 3.427 · lr 0.0e+00 · grad norm 1.1 · 171 tokens/s",
        "step 2/3 · loss 3.217 · lr 2.0e-04 · grad norm 0.9 · 3.1 s/step · 110 tokens/s",
        "step 3/3 · validation loss 2.79",
        "training took 19.5 s · mean training loss 3.154",
        "Done: 3 steps in 20 s; adapter saved.",
    ]
    assert readable(REAL_LOG, lines=2).splitlines() == shown[-2:]


def test_preference_metrics_and_lines_that_only_look_like_dicts_or_steps_are_shown_as_words():
    raw = ("step 4/4: epoch=1, loss=0.69, reward_margin=0.0125, preference_accuracy=0.75, tokens_per_s=80\n"
           "{not a dict: the user's own line}\n"
           "step 4 of 4 was the last\n")
    assert readable(raw).splitlines() == [
        "step 4/4 · loss 0.69 · reward margin 0.0125 · preference accuracy 75% · 80 tokens/s",
        "{not a dict: the user's own line}",
        "step 4 of 4 was the last",
    ]
