"""The Jinja environment chat templates run in: transformers' own, plus a size budget on every value.

Contract: `environment()` is an `ImmutableSandboxedEnvironment` configured as transformers'
`_compile_jinja_template` configures its own (trim_blocks, lstrip_blocks, loop controls, the
`{% generation %}` block, a `tojson` that does not escape HTML, `raise_exception`, `strftime_now`, `dict`,
a `namespace` that refuses underscore names), so a template renders here exactly as it does in
`apply_chat_template`. transformers builds those inside a function, so they are rewritten here.

On top, nothing a template computes may grow past `size_budget()` characters (set per render with
`budget(chars)`): the Jinja sandbox refuses attribute escapes but not `'a'|center(10**9)`, which
allocates a gigabyte in one C call where no time limit can interrupt. So every way to make a big value
in one step is estimated first and refused with `SecurityError` when too big: the operators `*`, `+`,
`%`, `**` and `~`; the filters center, indent, wordwrap, replace, join, format, batch, tojson, string
and pprint; the str methods center, ljust, rjust, zfill, expandtabs, replace, join, format and
format_map; and the rendered output as a whole. The measuring and the budget are in
`core.template_budget`; `budget` and `weight` are re-exported here.
"""

from __future__ import annotations

import functools
import json
from datetime import datetime

import jinja2
from jinja2 import filters as jinja_filters
from jinja2 import nodes
from jinja2.compiler import CodeGenerator
from jinja2.exceptions import SecurityError
from jinja2.ext import Extension
from jinja2.sandbox import ImmutableSandboxedEnvironment

from core.template_budget import (ESTIMATES, MIN_BUDGET, binop_size, budget, format_size, refuse_over, size_budget,
                                  weight, width_of)

__all__ = ["MIN_BUDGET", "BoundedSandbox", "budget", "environment", "size_budget", "weight"]


def _bounded_filter(name: str, original):
    """`original` behind a size check; its Jinja context argument, if it takes one, passes through."""
    skip = 1 if hasattr(original, "jinja_pass_arg") else 0

    @functools.wraps(original)
    def bounded(*args, **kwargs):
        refuse_over(ESTIMATES[name](*args[skip:], **kwargs), f"the filter '{name}'")
        return original(*args, **kwargs)

    return bounded


@jinja2.pass_eval_context
def _join(eval_ctx, value, d: str = "", attribute=None):
    items = list(value)
    refuse_over(sum(weight(item) for item in items) + len(d) * len(items), "the filter 'join'")
    return jinja_filters.sync_do_join(eval_ctx, items, d, attribute)


def _batch(value, linecount: int, fill_with=None):
    if fill_with is not None:
        refuse_over(width_of(linecount), "the filter 'batch'")
    return jinja_filters.do_batch(value, linecount, fill_with)


def _whole(name: str, original):
    """A filter whose output is about the size of its whole input (tojson, string, pprint)."""
    @functools.wraps(original)
    def bounded(value, *args, **kwargs):
        refuse_over(weight(value), f"the filter '{name}'")
        return original(value, *args, **kwargs)

    return bounded


def _tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    # transformers' own: Jinja's built-in tojson escapes <, >, & and ' for HTML, which a prompt must not.
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


class _GenerationBlock(Extension):
    """transformers' `{% generation %}...{% endgeneration %}`, which marks the assistant's tokens for
    training masks; a prompt is just its body, as transformers renders it."""

    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
        return nodes.CallBlock(self.call_method("_body"), [], [], body).set_lineno(lineno)

    def _body(self, caller):
        return caller()


class _TemplateDict:
    """transformers' `dict` global: builds dicts without exposing the dict type itself."""

    def __call__(self, *args, **kwargs):
        return dict(*args, **kwargs)

    def fromkeys(self, *args, **kwargs):
        return dict.fromkeys(*args, **kwargs)


class _Namespace(jinja2.utils.Namespace):
    """transformers' `namespace`: no underscore-prefixed attributes, a way into CPython's internals."""

    def __init__(*args, **kwargs):  # the signature trick of Jinja's Namespace, so `namespace(self=...)` works
        self, args = args[0], args[1:]
        attributes = dict(*args, **kwargs)
        for name in attributes:
            _Namespace._check_name(name)
        jinja2.utils.Namespace.__init__(self, attributes)

    def __setitem__(self, name, value):
        _Namespace._check_name(name)
        jinja2.utils.Namespace.__setitem__(self, name, value)

    @staticmethod
    def _check_name(name):
        if isinstance(name, str) and name.startswith("_"):
            raise SecurityError(f"a namespace may not hold the underscore name {name!r}")


class _BoundedConcat(CodeGenerator):
    """Compiles `a ~ b` to a size-checked join: Jinja emits it as a plain `str_join` call, which no
    sandbox hook sees, and doubling a string thirty times in a loop takes a gigabyte."""

    def visit_Concat(self, node, frame) -> None:
        self.write("environment.bounded_concat((")
        for argument in node.nodes:
            self.visit(argument, frame)
            self.write(", ")
        self.write("))")


def _raise_exception(message: str):
    raise jinja2.TemplateError(message)


class BoundedSandbox(ImmutableSandboxedEnvironment):
    code_generator_class = _BoundedConcat
    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def concat(self, pieces) -> str:  # the whole output, as Template.render joins it
        collected, total = [], 0
        for piece in pieces:
            total += len(piece)
            refuse_over(total, "the rendered prompt")
            collected.append(piece)
        return "".join(collected)

    def bounded_concat(self, values) -> str:
        refuse_over(sum(weight(value) for value in values), "'~'")
        return "".join(map(str, values))

    def call_binop(self, context, operator, left, right):
        if operator in ("*", "+"):
            refuse_over(binop_size(operator, left, right), f"'{operator}'")
        if operator == "**" and isinstance(left, (int, float)) and isinstance(right, (int, float)) \
                and abs(left) > 1 and right > 64:
            raise SecurityError("the template computes an oversized power")
        if operator == "%" and isinstance(left, str):
            refuse_over(format_size(left, right, {}), "'%'")
        return super().call_binop(context, operator, left, right)

    def call(__self, __context, __obj, *args, **kwargs):  # noqa: N805 (Jinja's own signature)
        name = getattr(__obj, "__name__", "")
        target = getattr(__obj, "__self__", None)
        if isinstance(target, str) and name in ESTIMATES and name not in ("indent", "wordwrap"):
            refuse_over(ESTIMATES[name](target, *args, **kwargs), f"str.{name}")
        if isinstance(target, str) and name == "join" and args:
            items = list(args[0])
            refuse_over(sum(weight(item) for item in items) + len(target) * len(items), "str.join")
            args = (items, *args[1:])
        return super().call(__context, __obj, *args, **kwargs)

    def wrap_str_format(self, value):
        wrapped = super().wrap_str_format(value)
        if wrapped is None:
            return None
        text = value.__self__

        @functools.wraps(wrapped)
        def bounded(*args, **kwargs):
            mapping = args[0] if value.__name__ == "format_map" and args else kwargs
            refuse_over(format_size(text, args if value.__name__ == "format" else (), dict(mapping)),
                         f"str.{value.__name__}")
            return wrapped(*args, **kwargs)

        return bounded



def environment() -> BoundedSandbox:
    env = BoundedSandbox(trim_blocks=True, lstrip_blocks=True,
                         extensions=[_GenerationBlock, "jinja2.ext.loopcontrols"])
    for name in ("center", "indent", "wordwrap", "replace", "format"):
        env.filters[name] = _bounded_filter(name, env.filters[name])
    for name in ("string", "pprint"):
        env.filters[name] = _whole(name, env.filters[name])
    env.filters.update(join=_join, batch=_batch, tojson=_whole("tojson", _tojson))
    env.globals.update(raise_exception=_raise_exception, strftime_now=lambda fmt: datetime.now().strftime(fmt),
                       dict=_TemplateDict(), namespace=_Namespace)
    return env

