"""How big a value a chat template builds may grow, and how big a value is: the sandbox's size budget.

Contract: within `with budget(input_chars):` values may grow to `size_budget()` characters, a million
plus four times the input's. `weight(value)` says about how many characters a value is as text, walking
containers without building their text; `refuse_over(size, what)` raises Jinja's `SecurityError` when a
size is over the budget. `ESTIMATES` and `format_size` bound what a str method or filter would build from
its arguments, and `binop_size` what an operator would, so `core.template_sandbox` can refuse a
gigabyte before the one C call that would allocate it.
"""

from __future__ import annotations

import contextlib
import contextvars
import re

from jinja2.exceptions import SecurityError

MIN_BUDGET = 1_000_000
"""The smallest size budget, in characters; a render's grows with its messages (see `budget`)."""
_budget = contextvars.ContextVar("template_size_budget", default=MIN_BUDGET)
_NUMBERS = re.compile(r"\d+")


@contextlib.contextmanager
def budget(input_chars: int):
    """Within the block, values may grow to a million characters plus four times the input's."""
    token = _budget.set(MIN_BUDGET + 4 * input_chars)
    try:
        yield
    finally:
        _budget.reset(token)


def size_budget() -> int:
    return _budget.get()


def weight(value, limit: int | None = None) -> int:
    """About how many characters `value` is as text; stops counting once past `limit`."""
    limit = size_budget() if limit is None else limit
    total, stack = 0, [value]
    while stack and total <= limit:
        item = stack.pop()
        if isinstance(item, str):
            total += len(item)
        elif isinstance(item, (list, tuple, set, frozenset)):
            total += 2 + len(item)
            stack.extend(item)
        elif isinstance(item, dict):
            total += 2 + len(item)
            stack.extend(item.keys())
            stack.extend(item.values())
        else:
            total += 8 if not isinstance(item, int) else 8 + item.bit_length() // 3
    return total


def refuse_over(size: int, what: str) -> None:
    if size > size_budget():
        raise SecurityError(f"{what} would build about {size:,} characters, over the budget of {size_budget():,}")


def as_text(value) -> str:
    """`value` as the text a filter would work on, refused first if that text would be too big."""
    if isinstance(value, str):
        return value
    refuse_over(weight(value), "turning a value into text")
    return str(value)


def width_of(value) -> int:
    return len(value) if isinstance(value, str) else max(0, int(value)) if isinstance(value, (int, float)) else 0


def format_size(text: str, args, kwargs) -> int:
    """An upper bound for `text % args` or `text.format(...)`: widths written in the text or passed as
    numbers (`%*s`) are counted in full, as if each were used."""
    values = [*args, *kwargs.values()] if isinstance(args, (list, tuple)) else [args, *kwargs.values()]
    widths = sum(int(number) for number in _NUMBERS.findall(text)) + sum(
        abs(value) for value in values if isinstance(value, int) and not isinstance(value, bool))
    return len(text) + widths + sum(weight(value) for value in values)


def _replace_size(text, old, new, count=None) -> int:
    text, old, new = as_text(text), str(old), str(new)
    hits = len(text) + 1 if old == "" else text.count(old)
    if isinstance(count, int) and count >= 0:
        hits = min(hits, count)
    return len(text) + hits * max(0, len(new) - len(old))


# What a str method or filter would build, from its arguments (the value first).
ESTIMATES = {
    "center": lambda text, width=80, *rest: max(len(as_text(text)), width_of(width)),
    "ljust": lambda text, width, *rest: max(len(text), width_of(width)),
    "rjust": lambda text, width, *rest: max(len(text), width_of(width)),
    "zfill": lambda text, width: max(len(text), width_of(width)),
    "expandtabs": lambda text, tabsize=8: len(text) + text.count("\t") * width_of(tabsize),
    "replace": _replace_size,
    "indent": lambda text, width=4, *rest, **options: len(as_text(text)) + (as_text(text).count("\n") + 1) * width_of(width),
    "wordwrap": lambda text, width=79, breaks=True, wrapstring=None, *rest, **options:
        len(as_text(text)) * (1 + len(str(wrapstring or "\n"))) + 1,
    "format": lambda text, *args, **kwargs: format_size(as_text(text), args, kwargs),
}


def binop_size(operator: str, left, right) -> int:
    sized = (str, list, tuple)
    if operator == "+":
        return weight(left) + weight(right) if isinstance(left, sized) and isinstance(right, sized) else 0
    for value, count in ((left, right), (right, left)):
        if isinstance(value, sized) and isinstance(count, int):
            return weight(value) * max(0, count)
    if isinstance(left, int) and isinstance(right, int):  # repeated squaring builds a huge integer
        return (left.bit_length() + right.bit_length()) // 3
    return 0

