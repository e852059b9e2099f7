"""Every error a person reads, in Chinese too: each message and hint core (or a tab) passes to a
`ChatsmithError`, found by reading core/ and tabs/ with `ast` so that a new one without a Chinese entry fails
here; the explanations of library failures; and real errors raised by core, shown by `error_line` in Chinese
while English stays the text the app always showed."""

from __future__ import annotations

import ast
import errno
import importlib
import re
from pathlib import Path

import pytest

from core.errors import describe
from core.explain import RULES
from tabs.messages import MESSAGES, error_line, say, translated

ROOT = Path(__file__).resolve().parent.parent
CORE = ROOT / "core"
ENGLISH_RUN = re.compile(r"[A-Za-z]{2,}(?:[ ,'-]+[A-Za-z]{2,}){2,}")
"""Three English words in a row: a sentence left untranslated (technical names stand alone)."""
KEPT_NAMES = re.compile(r"Hugging Face(?: Hub)?|pip install [\w=.-]+|python -m core\.\w+(?: [A-Za-z-]+)*|x1")
"""What stays as it is in Chinese text although it is several words: names, commands, and the sample value."""


def english_left(text: str) -> re.Match | None:
    return ENGLISH_RUN.search(KEPT_NAMES.sub("", text))


UNREADABLE = {
    ("core/train/settings.py", "capabilities.qlora.reason"):
        "a gate's reason (core/devices.py), translated by the gate entries and checked by "
        "test_every_reason_a_machine_gives_for_greying_a_control_out_reads_in_chinese",
    ("core/train/recipe.py", "*oom_advice(settings, device)"): "test_the_out_of_memory_advice_reads_in_chinese",
    ("core/train/preference.py", "*recipe.oom_advice(settings, device)"):
        "test_the_out_of_memory_advice_reads_in_chinese",
    ("core/hub_errors.py", "'Check the internet connection and try again.' + then"):
        "ends with the caller's note on what is kept: test_an_unreachable_hub_reads_in_chinese_with_what_is_kept",
}
"""Messages or hints passed in a variable, which no sample can render, with where they are checked instead."""


def error_classes() -> set[str]:
    """ChatsmithError and every class in core/ that derives from it, by name."""
    bases = {}
    for path in CORE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                bases[node.name] = {base.id for base in node.bases if isinstance(base, ast.Name)}
    found = {"ChatsmithError"}
    while grown := {name for name, parents in bases.items() if parents & found} - found:
        found |= grown
    return found


def call_sites() -> list[tuple[str, int, list[ast.expr]]]:
    """(file, line, [message, hint]) for every call in core/ and tabs/ that builds one of our errors."""
    classes, sites = error_classes(), []
    for path in sorted([*CORE.rglob("*.py"), *(ROOT / "tabs").rglob("*.py")]):
        for node in ast.walk(ast.parse(path.read_text())):
            function = getattr(node, "func", None)
            name = getattr(function, "id", None) or getattr(function, "attr", None)
            if isinstance(node, ast.Call) and name in classes:
                arguments = node.args[:2] + [kw.value for kw in node.keywords if kw.arg in ("message", "hint")]
                sites.append((path.relative_to(ROOT).as_posix(), node.lineno, arguments))
    return sites


def renderings(node: ast.expr, digits: bool, where: str = "") -> list[str] | None:
    """The texts an argument can be: a constant as is, an f-string with a sample for each value ("x1", or
    "7" where `digits` or where it is formatted as a number; a module's CONSTANT as its value), both sides of
    a conditional; None when the text comes from a variable."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.JoinedStr):
        return ["".join(part.value if isinstance(part, ast.Constant) else sample(part, digits, where)
                        for part in node.values)]
    if isinstance(node, ast.IfExp):
        body, orelse = renderings(node.body, digits, where), renderings(node.orelse, digits, where)
        return None if body is None or orelse is None else body + orelse
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = renderings(node.left, digits, where), renderings(node.right, digits, where)
        return None if left is None or right is None else [a + b for a in left for b in right]
    return None


def sample(value: ast.FormattedValue, digits: bool, where: str) -> str:
    spec = "".join(part.value for part in getattr(value.format_spec, "values", []))
    name = getattr(value.value, "attr", None) or getattr(value.value, "id", "")
    if name.isupper():  # a constant of core, such as the adapter's file name, is part of the sentence
        module = importlib.import_module(where.removesuffix(".py").replace("/", "."))
        return format(eval(ast.unparse(value.value), vars(module)), spec)
    text = format(7, spec) if spec or digits else "x1"
    return repr(text) if value.conversion == ord("r") else text


def test_every_message_and_hint_core_gives_an_error_reads_in_chinese():
    sites, unreadable, missing = call_sites(), set(), []
    for where, line, arguments in sites:
        for argument in arguments:
            tries = [renderings(argument, digits, where) for digits in (False, True)]
            if tries[0] is None:
                unreadable.add((where, ast.unparse(argument)))
                continue
            for words, numbers in zip(*tries):  # one of the two samples fills the pattern as core would
                if words and all(translated(text, "zh") == text or english_left(translated(text, "zh"))
                                 for text in (words, numbers)):
                    missing.append(f"{where}:{line}: {words}")
                elif words and translated(words, "zh") != words:  # the values keep their place
                    assert translated(words, "zh").count("x1") == words.count("x1"), (where, line, words)
    assert len(sites) >= 200, len(sites)  # 216 calls when this was written (212 in core/)
    assert not missing, "\n".join(["No Chinese entry in tabs/messages_errors.py for:", *missing])
    assert unreadable == set(UNREADABLE), unreadable ^ set(UNREADABLE)


def test_every_rule_a_setting_check_names_reads_in_chinese():
    """`_check(ok, name, rule)` completes "Training setting '{name}' {rule}." and "Data setting `{name}` must be
    {expected}.", so each rule is an entry of its own."""
    rules = []
    for path in CORE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "_check" and len(node.args) == 3:
                rules += renderings(node.args[2], False, f"core/{path.relative_to(CORE)}") or []
    assert len(rules) >= 25, len(rules)
    for rule in rules:
        shown = translated(f"Training setting 'lora_rank' {rule}.", "zh")
        if rule.startswith(("must", "and", "works")):
            assert not english_left(shown.replace("x1", "")), shown
        else:
            shown = translated(f"Data setting `caps` must be {rule}.", "zh")
            assert shown.startswith("数据设置 `caps` 必须") and not english_left(shown), shown


def test_the_out_of_memory_advice_reads_in_chinese():
    from core.devices import DeviceInfo
    from core.train.recipe import oom_advice
    from core.train.settings import TrainSettings

    for kind in ("cpu", "cuda"):
        device = DeviceInfo(kind=kind, name="Some Device 24 GB", accelerator_memory_gb=24, compute_capability=None,
                            bf16=False, cpu_cores=2, ram_gb=24, bitsandbytes=False, llama_cpp=True, free_disk_gb=50)
        for checkpointing in (False, True):
            settings = TrainSettings(gradient_checkpointing=checkpointing, max_length=1024, batch_size=8)
            for text in oom_advice(settings, device):
                shown = translated(text, "zh")
                assert not english_left(shown.replace("Some Device 24 GB", "")), shown
                assert all(number in shown for number in re.findall(r"\d+", text)), shown


def test_an_unreachable_hub_reads_in_chinese_with_what_is_kept():
    from huggingface_hub.errors import OfflineModeIsEnabled

    from core import hub_errors

    error = hub_errors.hub_error(OfflineModeIsEnabled("offline"), "Push to kestrel/tuned", "",
                                 keep="The local files in /w/exports/kestrel are kept; push again to resume.")
    shown = error_line(error, "zh")
    assert shown == (f"❌ {say('error.OfflineError', 'zh')} 推送到 kestrel/tuned：无法连接 Hugging Face Hub。 "
                     "请检查网络连接后重试。/w/exports/kestrel 中的本地文件已保留；再次推送即可继续。")
    assert error_line(error) == f"❌ {describe(error)}"


def test_a_real_error_from_core_shows_in_chinese_and_in_english_as_before(tmp_path):
    from core.data import prepare
    from core.data.options import PrepareOptions

    empty = tmp_path / "chats.jsonl"
    empty.write_text("")
    with pytest.raises(Exception) as caught:
        prepare([empty], PrepareOptions(model=""))
    error = caught.value
    assert error_line(error) == f"❌ {describe(error)}" == "❌ chats.jsonl is empty. Check that the upload or export " \
                                                          "finished."
    shown = error_line(error, "zh")
    assert shown == f"❌ {say('error.BadInputError', 'zh')} chats.jsonl 是空的。 请确认上传或导出已经完成。"
    assert not english_left(shown.replace("chats.jsonl", "")), shown


@pytest.mark.parametrize("rule", RULES, ids=lambda rule: rule.explanation.cause[:30])
def test_every_explanation_of_a_library_failure_reads_in_chinese(rule):
    cause, fix = rule.explanation.cause, rule.explanation.fix
    for text in (cause, fix):
        assert not english_left(translated(text, "zh")), text


def test_an_explained_library_error_keeps_its_own_text_and_reads_in_chinese_around_it():
    error = OSError(errno.ENOSPC, "No space left on device")
    assert error_line(error) == f"❌ {describe(error)}"  # English exactly as before
    shown = error_line(error, "zh")
    assert shown == (f"❌ {say('error.other', 'zh')} 磁盘已满；正在写入的文件已丢弃，之前的文件完好无损。解决办法："
                     "释放一些空间（旧的运行、检查点或导出），或用 --workspace 把工作区移到别处。"
                     "（详情：OSError: [Errno 28] No space left on device）")
    assert say("err.explained", "en", cause="a", fix="b", details="c") == "a Fix: b (Details: c)"  # describe's shape
    assert error_line(RuntimeError("boom"), "zh") == f"❌ {say('error.other', 'zh')} RuntimeError: boom"


def test_the_error_entries_come_before_the_model_names_so_a_name_cannot_swallow_a_sentence():
    keys = list(MESSAGES)
    assert max(keys.index(key) for key in keys if key.startswith("err.")) < keys.index("choice.default_gguf")


@pytest.mark.parametrize("status", [401, 402, 503])
def test_a_hub_that_answers_with_an_error_reads_in_chinese_with_what_is_kept(status):
    import httpx
    from huggingface_hub.errors import HfHubHTTPError

    from core import hub_errors
    from core.evaluate.hub_votes import KEPT, _translate

    request = httpx.Request("POST", "https://huggingface.co/api/x")
    answer = HfHubHTTPError("refused", response=httpx.Response(status, request=request))
    for error in (hub_errors.hub_error(answer, "Push to kestrel/tuned", "", retries=3,
                                       keep="The local files in /w/exports/kestrel are kept; push again to resume."),
                  _translate(answer, "Votes cannot be uploaded to kestrel/votes", "")):
        shown = error_line(error, "zh")
        assert not english_left(shown.replace("kestrel/tuned", "").replace("kestrel/votes", "")), shown
        kept = "投票已保存在本地" if KEPT in str(error) else "/w/exports/kestrel 中的本地文件已保留"
        assert shown.endswith(f"{kept}；{'下次启动时会再试' if KEPT in str(error) else '再次推送即可继续'}。"), shown
        assert error_line(error) == f"❌ {describe(error)}"
