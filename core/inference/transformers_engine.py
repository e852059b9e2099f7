"""A Hugging Face model folder through transformers, with any number of PEFT adapters on one base.

The base loads once in fp32 (fast and exact on CPUs). Adapters are added with PEFT's `load_adapter` and
chosen per request with `set_adapter`; a request without adapter runs inside `disable_adapter()`. So
switching between the base and any run's adapter never reloads the base.

Generation runs `model.generate` in a thread and streams through `TextIteratorStreamer`; a stopping
criterion watches the caller's stop event, and the end-of-turn token (the generation config's eos ids,
the tokenizer's eos, and ChatML `<|im_end|>` when the template uses it) ends the answer.

The KV cache of the last generation is kept (transformers' `DynamicCache`): when the next prompt, with
the same adapter, starts with the same tokens (the next turn of that conversation), the cache is cut to
the shared prefix and `generate` evaluates only the rest. One cache: a turn of another conversation
replaces it.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path

from core import templates
from core.inference import MAX_CONTEXT, GenerationSettings, render_prompt
from core.inference.prefix_states import shared_prefix


class TransformersBackend:
    def __init__(self, folder: Path, in_4bit: bool = False):
        import torch

        from core.models import load_causal_lm, load_tokenizer, nf4_config

        self.folder = Path(folder)
        self.tokenizer = load_tokenizer(self.folder)
        quantized = {}
        if in_4bit:  # the base a QLoRA adapter was trained on, where bitsandbytes holds it (see base_in_4bit)
            device = "cuda:0" if torch.cuda.is_available() else "cpu"
            compute = torch.bfloat16 if device != "cpu" and torch.cuda.is_bf16_supported() else torch.float32
            quantized = dict(quantization_config=nf4_config(compute), device_map={"": device})
        self.model = load_causal_lm(self.folder, dtype=torch.float32, **quantized).eval()
        template = self.tokenizer.chat_template
        self.template = template.get("default") if isinstance(template, dict) else template
        self.bos = self.tokenizer.bos_token or ""
        self.eos = self.tokenizer.eos_token or ""
        if self.template:
            templates.check(self.template, self.bos, self.eos)  # refuse a hostile template at load, before it runs
        self.context_length = min(getattr(self.model.config, "max_position_embeddings", 2048), MAX_CONTEXT)
        self.eos_ids = self._end_of_turn_ids()
        self._adapters: dict[Path, str] = {}
        self._kept: tuple | None = None  # (adapter, token ids the cache holds, cache) of the last generation
        self._lock = threading.Lock()  # one request at a time: the active adapter is model state

    def add_adapter(self, folder: Path) -> None:
        """Load an adapter beside the others, once; the base weights stay as they are."""
        from peft import PeftModel

        from core.models import check_model_folder

        with self._lock:
            if folder in self._adapters:
                return
            check_model_folder(folder)  # safetensors only, nothing to unpickle, not truncated
            name = f"adapter_{len(self._adapters)}"
            if isinstance(self.model, PeftModel):
                self.model.load_adapter(str(folder), adapter_name=name)
            else:
                self.model = PeftModel.from_pretrained(self.model, str(folder), adapter_name=name).eval()
            self._adapters[folder] = name

    def prompt_ids(self, messages: list[dict]) -> list[int]:
        prompt = render_prompt(self.template, messages, self.bos, self.eos, self.folder.name)
        # The template writes any BOS itself, as apply_chat_template assumes.
        return self.tokenizer(prompt, add_special_tokens=False)["input_ids"]

    def count_tokens(self, messages: list[dict]) -> int:
        return len(self.prompt_ids(messages))

    def stream(self, messages: list[dict], settings: GenerationSettings, stop: threading.Event | None = None,
               usage: dict | None = None, adapter: Path | None = None) -> Iterator[str]:
        import torch
        from transformers import StoppingCriteria, TextIteratorStreamer

        prompt = self.prompt_ids(messages)
        ids = torch.tensor([prompt], device=self.model.device)
        stop = stop or threading.Event()
        left = threading.Event()  # the consumer left; kept apart from `stop`, which callers read as "Stop clicked"
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)

        class _StopRequested(StoppingCriteria):
            def __call__(self, input_ids, scores, **kwargs):
                return stop.is_set() or left.is_set()

        arguments = dict(input_ids=ids, attention_mask=torch.ones_like(ids), streamer=streamer,
                         stopping_criteria=[_StopRequested()], eos_token_id=self.eos_ids,
                         pad_token_id=self.tokenizer.pad_token_id or self.eos_ids[0],
                         **_sampling(settings))
        with self._lock:
            if (cache := self._reusable_cache(prompt, adapter)) is not None:
                arguments["cache"] = cache
            result: dict = {}
            worker = threading.Thread(target=self._generate, args=(arguments, adapter, settings.seed, result),
                                      daemon=True, name="chat-generate")
            worker.start()
            try:
                yield from streamer
            finally:
                left.set()  # the consumer left early (client gone, Stop clicked): end the generate thread
                worker.join()
            if "error" in result:
                raise result["error"]
            if usage is not None:
                cut = result["tokens"] >= settings.max_new_tokens and result["last"] not in self.eos_ids
                usage.update(prompt_tokens=ids.shape[1], completion_tokens=result["tokens"],
                             finish_reason="length" if cut else "stop")

    def _generate(self, arguments: dict, adapter: Path | None, seed: int, result: dict) -> None:
        import torch

        try:
            torch.manual_seed(seed)
            with self._adapter_context(adapter), torch.inference_mode():
                output = self.model.generate(**arguments, return_dict_in_generate=True)
            sequence = output.sequences[0]
            result["tokens"], result["last"] = len(sequence) - arguments["input_ids"].shape[1], int(sequence[-1])
            if output.cache is not None:
                held = output.cache.get_seq_length()  # the last token sampled is not in it
                self._kept = (adapter, sequence[:held].tolist(), output.cache)
        except Exception as error:  # re-raised in the caller's thread
            result["error"] = error
            arguments["streamer"].end()

    def _reusable_cache(self, prompt: list[int], adapter: Path | None):
        """The last generation's cache cut to the prefix it shares with `prompt`, or None."""
        kept, self._kept = self._kept, None  # handed to one generation, which keeps a new one
        # `is_croppable`: cutting puts every layer back as it was (not so once a sliding window has slid).
        if kept is None or kept[0] != adapter or not getattr(kept[2], "is_croppable", False):
            return None
        _, held, cache = kept
        shared = min(shared_prefix(held, prompt), len(prompt) - 1)  # the last prompt token must run
        if shared < 1:
            return None
        if len(held) > shared:
            cache.crop(shared - len(held))  # a negative count: how many tokens to remove from the end
        return cache

    def _adapter_context(self, adapter: Path | None):
        if not self._adapters:
            return contextlib.nullcontext()
        if adapter is None:
            return self.model.disable_adapter()
        self.model.set_adapter(self._adapters[adapter])
        return contextlib.nullcontext()

    def _end_of_turn_ids(self) -> list[int]:
        configured = getattr(self.model.generation_config, "eos_token_id", None)
        ids = configured if isinstance(configured, list) else [configured]
        ids.append(self.tokenizer.eos_token_id)
        if self.template and "<|im_end|>" in self.template:
            ids.append(self.tokenizer.convert_tokens_to_ids("<|im_end|>"))
        return sorted({i for i in ids if isinstance(i, int) and i >= 0})


def base_in_4bit(adapter: Path | None) -> bool:
    """Whether Chat holds the base of `adapter` in 4-bit NF4: for a QLoRA run's adapter on a CUDA GPU.

    That is the model as trained, at a quarter of the memory. On a CPU bitsandbytes can hold it too, but on
    the default model it took 3-6× the CPU time to load and held 2.3× the RAM, not less, while its decoding
    ranged from 0.6× to 1.6× the speed of fp32 with the box's load (bench/qlora_cpu_bench.py), so there the
    base loads in fp32; Apple silicon has no bitsandbytes. The
    difference between the two is what the round-trip report states.
    """
    import importlib.util

    import yaml

    config = Path(adapter).parent / "config.yaml" if adapter else None
    if config is None or not config.is_file():
        return False
    try:
        trained_in_4bit = bool((yaml.safe_load(config.read_text(encoding="utf-8")) or {}).get("load_in_4bit"))
    except (OSError, yaml.YAMLError, AttributeError):
        return False
    import torch

    return trained_in_4bit and torch.cuda.is_available() and importlib.util.find_spec("bitsandbytes") is not None


def _sampling(settings: GenerationSettings) -> dict:
    if settings.temperature == 0:
        return dict(do_sample=False, max_new_tokens=settings.max_new_tokens,
                    repetition_penalty=settings.repetition_penalty, temperature=None, top_p=None, top_k=None)
    return dict(do_sample=True, max_new_tokens=settings.max_new_tokens, temperature=settings.temperature,
                top_p=settings.top_p, top_k=settings.top_k or None,
                repetition_penalty=settings.repetition_penalty)
