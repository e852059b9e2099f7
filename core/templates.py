"""Chat templates rendered in a sandbox with a time and size budget: a
template that reaches Python internals, loops forever or builds huge strings runs nothing.

A chat template is Jinja code shipped inside a model (`tokenizer_config.json`, `chat_template.jinja` or
a GGUF's `tokenizer.chat_template`), so it is untrusted input. transformers and llama-cpp-python already
render it in Jinja's `ImmutableSandboxedEnvironment`, which blocks attribute escapes such as
`cycler.__init__.__globals__` with a SecurityError. Neither bounds the work a template may do: nested
loops or `'x' * 10**10` hang or exhaust memory on the thread that serves chat. This module adds:

* a time budget: a watchdog raises an exception inside the rendering thread at its next bytecode
  (`PyThreadState_SetAsyncExc`), because Jinja's compiled loops call no hook we could check in;
* a size budget on every one-step way to build a huge value in C where no bytecode runs (operators,
  string filters and methods, the output itself): `core.template_sandbox`, which is also where the
  environment matches transformers' own (its `tojson`, its `{% generation %}` block);
* one entry point, `render()`, used by both backends, so both see the same prompt text, and
  `check()`, run when a model loads, so a hostile template is refused before anyone chats.

Both raise `UnsafeModelError` with text the UI shows as is.
"""

from __future__ import annotations

import ctypes
import threading

from jinja2 import TemplateError as JinjaError
from jinja2.exceptions import SecurityError

from core import template_sandbox
from core.errors import UnsafeModelError

RENDER_TIMEOUT_S = 2.0
PROBE = [{"role": "system", "content": "You are helpful."}, {"role": "user", "content": "Hi"},
         {"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "Bye"}]


class _RenderTimeout(BaseException):
    """Raised inside the rendering thread; BaseException so a template's own handlers cannot eat it."""


_ENV = template_sandbox.environment()


def render(template: str, messages: list[dict], *, bos_token: str = "", eos_token: str = "",
           add_generation_prompt: bool = True, timeout_s: float | None = None) -> str:
    """The prompt text for `messages`, rendered in the bounded sandbox."""
    timeout_s = RENDER_TIMEOUT_S if timeout_s is None else timeout_s
    try:
        compiled = _ENV.from_string(template)
    except JinjaError as error:
        raise UnsafeModelError(f"The model's chat template does not parse ({error}).",
                               "Fix the template in tokenizer_config.json, or pick another model.") from error
    variables = dict(messages=messages, add_generation_prompt=add_generation_prompt,
                     bos_token=bos_token, eos_token=eos_token, tools=None)
    try:
        with template_sandbox.budget(template_sandbox.weight(messages, limit=1 << 62)):
            return _with_deadline(lambda: compiled.render(**variables), timeout_s)
    except _RenderTimeout as error:
        raise UnsafeModelError(
            f"The model's chat template ran longer than {timeout_s:g} s and was stopped (an endless loop?).",
            "Do not use this model's template; replace it with a known one.") from error
    except SecurityError as error:
        raise UnsafeModelError(
            f"The model's chat template tried something unsafe and was blocked ({error}).",
            "Do not trust this model; replace its chat template with a known one.") from error
    except (JinjaError, ArithmeticError, LookupError, TypeError, ValueError) as error:  # the template's own bug
        raise UnsafeModelError(f"The model's chat template failed ({type(error).__name__}: {error}).",
                               "Check the messages' roles, or replace the template.") from error


def check(template: str, bos_token: str = "", eos_token: str = "") -> None:
    """Render a probe conversation once, so a hostile or broken template is refused at load time."""
    render(template, PROBE, bos_token=bos_token, eos_token=eos_token)


def _with_deadline(work, timeout_s: float):
    """Run `work()` on this thread; past the deadline, raise `_RenderTimeout` inside it."""
    thread_id, lock, finished = threading.get_ident(), threading.Lock(), [False]

    def interrupt() -> None:
        with lock:
            if not finished[0]:
                ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id),
                                                           ctypes.py_object(_RenderTimeout))

    watchdog = threading.Timer(timeout_s, interrupt)
    watchdog.daemon = True
    watchdog.start()
    try:
        return work()
    finally:
        with lock:
            finished[0] = True
        watchdog.cancel()
