"""Tiny random-weight models of the families users bring, each with its family's chat template.

No download: each model is built from its config class (a few layers, tiny width) and reuses the default
model's tokenizer, with the family's special tokens added and its chat template written in. The
templates below follow each family's own (Mistral v0.3, Qwen2.5, Llama 3, Gemma 3), cut down to
what a conversation without tools needs; the shape of the prompt and the end-of-turn token are the
family's. `build_family` saves one as a Hugging Face folder that every stage of the app can read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

MISTRAL_TEMPLATE = (
    "{%- if messages[0]['role'] == 'system' %}{%- set system_message = messages[0]['content'] %}"
    "{%- set loop_messages = messages[1:] %}{%- else %}{%- set loop_messages = messages %}{%- endif %}"
    "{{- bos_token }}{%- for message in loop_messages %}{%- if message['role'] == 'user' %}"
    "{%- if loop.last and system_message is defined %}"
    "{{- '[INST] ' + system_message + '\\n\\n' + message['content'] + '[/INST]' }}"
    "{%- else %}{{- '[INST] ' + message['content'] + '[/INST]' }}{%- endif %}"
    "{%- elif message['role'] == 'assistant' %}{{- ' ' + message['content'] | trim + eos_token }}"
    "{%- endif %}{%- endfor %}"
)
QWEN2_TEMPLATE = (
    "{%- if messages[0]['role'] == 'system' %}{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}"
    "{%- else %}{{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant."
    "<|im_end|>\\n' }}{%- endif %}{%- for message in messages %}"
    "{%- if message['role'] == 'user' or (message['role'] == 'system' and not loop.first) "
    "or message['role'] == 'assistant' %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{%- endif %}{%- endfor %}{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)
LLAMA3_TEMPLATE = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}"
    "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'"
    " + message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}"
    "{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}"
)
GEMMA3_TEMPLATE = (
    "{{ bos_token }}{%- if messages[0]['role'] == 'system' -%}"
    "{%- set first_user_prefix = messages[0]['content'] + '\\n\\n' -%}{%- set loop_messages = messages[1:] -%}"
    "{%- else -%}{%- set first_user_prefix = '' -%}{%- set loop_messages = messages -%}{%- endif -%}"
    "{%- for message in loop_messages -%}{%- if message['role'] == 'assistant' -%}{%- set role = 'model' -%}"
    "{%- else -%}{%- set role = message['role'] -%}{%- endif -%}"
    "{{ '<start_of_turn>' + role + '\\n' + (first_user_prefix if loop.first else '') }}"
    "{{ message['content'] | trim }}{{ '<end_of_turn>\\n' }}{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<start_of_turn>model\\n' }}{%- endif -%}"
)


@dataclass(frozen=True)
class Family:
    """One model family as the tests build it."""

    name: str
    architecture: str
    """The transformers class, as config.json names it and llama.cpp's converter looks it up."""
    template: str
    bos: str
    eos: str
    """The end-of-turn token: what the template closes an assistant turn with."""
    added: tuple[str, ...] = ()
    """Special tokens the family has and the default model's tokenizer lacks."""
    config: dict = field(default_factory=dict)
    pre_tokenizer: str = ""
    """The name llama.cpp's converter must be told, when transformers swaps in the family's own
    pre-tokenizer on the borrowed vocabulary (see tests/converter_hook)."""


FAMILIES = {
    "mistral": Family("mistral", "MistralForCausalLM", MISTRAL_TEMPLATE, "<s>", "</s>",
                      ("<s>", "</s>", "[INST]", "[/INST]"), {"sliding_window": None}),
    "qwen2": Family("qwen2", "Qwen2ForCausalLM", QWEN2_TEMPLATE, "<|endoftext|>", "<|im_end|>", (),
                    {"tie_word_embeddings": True}, pre_tokenizer="qwen2"),
    "llama3": Family("llama3", "LlamaForCausalLM", LLAMA3_TEMPLATE, "<|begin_of_text|>", "<|eot_id|>",
                     ("<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"),
                     {"rope_theta": 500000.0}),
    "gemma3": Family("gemma3", "Gemma3ForCausalLM", GEMMA3_TEMPLATE, "<bos>", "<end_of_turn>",
                     ("<bos>", "<start_of_turn>", "<end_of_turn>"),
                     {"head_dim": 16, "query_pre_attn_scalar": 16, "sliding_window": 512,
                      "layer_types": ["sliding_attention", "sliding_attention"]}),
}


def build_family(family: Family, tokenizer_dir: Path, target: Path, hidden: int = 64) -> Path:
    """A 2-layer random model of `family` with its tokenizer and template, saved to `target`."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    tokenizer.add_special_tokens({"additional_special_tokens": list(family.added)})
    tokenizer.bos_token, tokenizer.eos_token = family.bos, family.eos
    tokenizer.chat_template = family.template or tokenizer.chat_template  # None: keep the default's ChatML
    model_type = {"MistralForCausalLM": "mistral", "Qwen2ForCausalLM": "qwen2", "LlamaForCausalLM": "llama",
                  "Gemma3ForCausalLM": "gemma3_text"}[family.architecture]
    config = AutoConfig.for_model(
        model_type, vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=hidden * 2,
        num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, architectures=[family.architecture], **family.config)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.save_pretrained(target, safe_serialization=True)
    tokenizer.save_pretrained(target)
    return target


def make_it_stop(model_dir: Path, answer: str = "Hello") -> Path:
    """Set the weights so that greedy decoding answers `answer` then the end-of-turn token, whatever the prompt.

    The layers' output projections are zeroed, so the residual stream is the token's embedding in every
    family here; embeddings (tied to the output layer) then make a bigram model: any token → `answer`,
    `answer` → end of turn. Two dimensions carry it, so RMS norms of either kind (w or 1 + w) keep it, and
    the margins (several logits) outlast the few LoRA steps the tests train.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    word, end = tokenizer.encode(answer, add_special_tokens=False)[0], tokenizer.convert_tokens_to_ids(tokenizer.eos_token)
    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
            if model.config.model_type.startswith("gemma"):
                # Gemma normalises each sublayer's output before adding it: LoRA's first small update
                # would arrive at full scale. Its norms multiply by 1 + w; keep a tenth of it.
                layer.post_attention_layernorm.weight.fill_(-0.9)
                layer.post_feedforward_layernorm.weight.fill_(-0.9)
        table = model.get_input_embeddings().weight
        table.zero_()
        table[:, 0] = 1.0  # logit 1 after any token, in units of the normalised state
        table[word, :2] = torch.tensor([2.0, 1.0])  # 2 after any other token, 5 after itself
        table[end, :2] = torch.tensor([0.0, 8.0])  # 0 after any other token, 8 after the answer
        if model.get_output_embeddings().weight is not table:
            model.get_output_embeddings().weight.copy_(table)
    model.save_pretrained(model_dir, safe_serialization=True)
    return model_dir
