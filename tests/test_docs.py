"""The repository stands alone: nothing cites fault ids or notes a reader of it does not have, and every
test that docs/reliability.md names as performing a fault exists."""

from __future__ import annotations

import re

from tests.conftest import ROOT

FAULTS_DOC = ROOT / "docs" / "reliability.md"
# Outside notes once cited from here: a fault id such as "G6" or "R1-R5", the notes' file names, their folder.
FAULT_ID = re.compile(r"\b[GHMTDRX]\d{1,2}\b")
# (Written with character classes so that this line does not match itself.)
OUTSIDE_NOTES = re.compile(r"RELIABILIT[Y]|STACK[.]md|STYLE[.]md|[.][.]/shared")
TEST_NAMED_BY_ID = re.compile(r"def test_[ghmtdrx]\d{1,2}_")
# Product names that look like ids: an Apple M2, an NVIDIA T4.
PRODUCTS = re.compile(r"Apple M\d|Tesla T4|NVIDIA T4")
CITED_TEST = re.compile(r"`(tests/[\w/]+\.py)::(test_\w+)`")


def repository_text_files():
    files = [ROOT / "app.py", ROOT / "README.md", ROOT / ".ci" / "run", *sorted((ROOT / "docs").glob("*.md"))]
    for folder in ("core", "tabs", "tests", "bench"):
        files += sorted((ROOT / folder).rglob("*.py"))
    return [path for path in files if path.is_file() and path != ROOT / "tests" / "test_docs.py"]


def test_no_file_cites_fault_ids_or_notes_outside_the_repository():
    citations = []
    for path in repository_text_files():
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            line = PRODUCTS.sub("", line)
            if FAULT_ID.search(line) or OUTSIDE_NOTES.search(line) or TEST_NAMED_BY_ID.search(line):
                citations.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not citations, "say the fault in words or point to a section of docs/reliability.md:\n" + \
        "\n".join(citations)


def test_every_test_the_reliability_list_names_exists():
    cited = CITED_TEST.findall(FAULTS_DOC.read_text(encoding="utf-8"))
    assert len(cited) > 50  # the list is read, not an empty match
    missing = [f"{file}::{name}" for file, name in cited
               if not re.search(rf"^(async )?def {name}\(", (ROOT / file).read_text(encoding="utf-8"), re.M)]
    assert not missing, f"docs/reliability.md names tests that do not exist: {missing}"


def test_sections_cited_from_the_code_exist_in_the_reliability_list():
    headings = set(re.findall(r"^## (.+)$", FAULTS_DOC.read_text(encoding="utf-8"), re.M))
    cited = {section for path in repository_text_files()
             for section in re.findall(r"docs/reliability\.md, \"([^\"]+)\"", path.read_text(encoding="utf-8"))}
    assert cited <= headings, f"sections cited but not in docs/reliability.md: {sorted(cited - headings)}"
