"""Text out of PDF, DOCX, HTML, Markdown, plain text and JSONL files, with where each piece came from.

Contract: `read_document(path, max_bytes)` returns a `Document`: its `blocks` (text with the page it is on,
for PDFs, and the heading path above it, for structured files) and its page count. A file no text can be
taken from raises `UnreadableFile`, whose message is the reason a report lists (encrypted, no text layer,
corrupt, empty, binary, too large, unsupported type); the size is checked before any byte is read. It
never modifies the file.

Libraries, and why: `pypdf` for PDF (pure Python, no system libraries, reads per page and knows
encryption); `python-docx` for DOCX (its paragraphs carry their style, so "Heading 2" is a heading);
`lxml.html` for HTML (forgiving of broken markup, already installed by python-docx); `markdown-it-py`
for Markdown headings (a CommonMark parser: `#` inside a code block is not a heading). `markitdown` was
left out: it pulls in a dozen packages (magika, onnxruntime for file-type detection) for the same output.
Text files that are not UTF-8 are decoded by `charset-normalizer` (GBK and Big5 are common in Chinese
documents).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from core.errors import BadInputError

HEADING_JOIN = " › "
SUPPORTED = (".pdf", ".docx", ".html", ".htm", ".md", ".markdown", ".txt", ".text", ".jsonl")


class UnreadableFile(BadInputError):
    """A file no text can be taken from; `message` is the reason the collection report lists."""


@dataclass(frozen=True)
class Block:
    """A stretch of text with one location: a PDF page, or the section under one heading path."""

    text: str
    page: int | None = None
    """1-based page number (PDF only)."""
    heading: str = ""
    """The headings above this text, outermost first, joined by " › "."""


@dataclass(frozen=True)
class Document:
    name: str
    blocks: list[Block]
    pages: int = 0
    """Pages in the file (PDF); 0 for formats without pages."""
    note: str = ""
    """Something the report should say about an otherwise readable file (pages without text, encoding)."""


def read_document(path: str | Path, max_bytes: int) -> Document:
    path = Path(path)
    if not path.is_file():
        raise UnreadableFile(f"{path.name}: not found (or not a file).")
    size = path.stat().st_size
    if size == 0:
        raise UnreadableFile(f"{path.name}: empty file (0 bytes).", "Check that the upload or copy finished.")
    if size > max_bytes:
        raise UnreadableFile(f"{path.name}: {size / 2**20:,.0f} MB, above the {max_bytes / 2**20:,.0f} MB limit per file.",
                             "Split it into smaller files, or raise the limit (max_file_mb) if this machine "
                             "has the memory.")
    reader = READERS.get(path.suffix.lower())
    if reader is None:
        raise UnreadableFile(f"{path.name}: unsupported type '{path.suffix or '(none)'}'.",
                             "Use PDF, DOCX, HTML, Markdown, plain text or JSONL of {\"text\": ...}.")
    document = reader(path)
    blocks = [block for block in document.blocks if block.text.strip()]
    if not blocks:
        raise UnreadableFile(f"{path.name}: holds no text.")
    return Document(document.name, blocks, document.pages, document.note)


# ---- PDF ----------------------------------------------------------------------------------------

def _pdf(path: Path) -> Document:
    from pypdf import PdfReader

    logging.getLogger("pypdf").setLevel(logging.ERROR)  # its repair warnings would reach the CLI's output

    try:
        reader = PdfReader(path)
        if reader.is_encrypted and not _opens_without_password(reader):
            raise UnreadableFile(f"{path.name}: encrypted, it needs a password.",
                                 "Save a copy without the password and add that.")
        texts = [page.extract_text() or "" for page in reader.pages]
    except UnreadableFile:
        raise
    except Exception as error:  # pypdf raises many types for broken files; all mean the same to a user
        raise UnreadableFile(f"{path.name}: corrupt or not a PDF ({type(error).__name__}: {str(error)[:120]}).",
                             "Open it in a PDF viewer; if it opens, print it to a new PDF and add that.") from None
    blocks = [Block(text, page=number) for number, text in enumerate(texts, start=1) if text.strip()]
    if not blocks:
        raise UnreadableFile(f"{path.name}: no text layer on any of its {len(texts)} pages (a scanned document?).",
                             "Run OCR on it first (for example ocrmypdf) and add the result.")
    empty = len(texts) - len(blocks)
    note = f"{empty} of {len(texts)} pages have no text layer (scanned?)" if empty else ""
    return Document(path.name, blocks, pages=len(texts), note=note)


def _opens_without_password(reader) -> bool:
    """PDFs locked only against editing open with the empty user password."""
    try:
        return bool(reader.decrypt(""))
    except Exception:  # an unknown cipher, or cryptography missing for AES: treat as locked
        return False


# ---- DOCX ---------------------------------------------------------------------------------------

def _docx(path: Path) -> Document:
    import docx
    from docx.table import Table

    try:
        document = docx.Document(str(path))
        items = list(document.iter_inner_content())
    except Exception as error:  # a zip or XML error: the file is not a whole DOCX
        raise UnreadableFile(f"{path.name}: corrupt or not a DOCX ({type(error).__name__}).",
                             "Open it in a word processor and save it again as .docx.") from None
    sections = _Sections()
    for item in items:
        if isinstance(item, Table):
            sections.add("\n".join(" | ".join(cell.text.strip() for cell in row.cells) for row in item.rows))
            continue
        style = (item.style.name if item.style is not None else "") or ""
        if style == "Title" or style.startswith("Heading"):
            level = 0 if style == "Title" else int("".join(c for c in style if c.isdigit()) or 1)
            sections.heading(level, item.text.strip())
        else:
            sections.add(item.text)
    return Document(path.name, sections.blocks())


# ---- HTML ---------------------------------------------------------------------------------------

SKIPPED_TAGS = {"script", "style", "noscript", "template", "head", "svg"}
LINE_TAGS = {"p", "div", "li", "tr", "br", "pre", "blockquote", "section", "article", "table", "ul", "ol",
             "dd", "dt", "main", "header", "footer", "td", "th"}


def _html(path: Path) -> Document:
    import lxml.html

    text = _decode(path)
    try:
        root = lxml.html.document_fromstring(text)
    except Exception as error:  # lxml refuses only documents with nothing parseable in them
        raise UnreadableFile(f"{path.name}: not readable as HTML ({error}).") from None
    sections = _Sections()
    _walk_html(root, sections)
    return Document(path.name, sections.blocks())


def _walk_html(element, sections: "_Sections") -> None:
    tag = element.tag.lower() if isinstance(element.tag, str) else ""
    if tag in SKIPPED_TAGS or not tag:
        return sections.add(element.tail or "", inline=True)  # comments and skipped tags keep their tail
    if len(tag) == 2 and tag[0] == "h" and tag[1] in "123456":
        sections.heading(int(tag[1]), " ".join(element.text_content().split()))
        return sections.add(element.tail or "", inline=True)
    if tag in LINE_TAGS:
        sections.add("\n", inline=True)
    sections.add(element.text or "", inline=True)
    for child in element:
        _walk_html(child, sections)
    if tag in LINE_TAGS:
        sections.add("\n", inline=True)
    sections.add(element.tail or "", inline=True)


# ---- Markdown, plain text, JSONL ----------------------------------------------------------------

def _markdown(path: Path) -> Document:
    from markdown_it import MarkdownIt

    text = _decode(path)
    lines = text.splitlines()
    tokens = MarkdownIt("commonmark").parse(text)
    headings = {}  # first line of a heading -> (level, title, lines it spans)
    for index, token in enumerate(tokens):
        if token.type == "heading_open" and token.map:
            headings[token.map[0]] = (int(token.tag[1]), tokens[index + 1].content.strip(), token.map[1] - token.map[0])
    sections, number = _Sections(), 0
    while number < len(lines):
        if number in headings:
            level, title, span = headings[number]
            sections.heading(level, title)
            number += span
            continue
        sections.add(lines[number])
        number += 1
    return Document(path.name, sections.blocks())


def _plain(path: Path) -> Document:
    return Document(path.name, [Block(_decode(path))])


def _jsonl(path: Path) -> Document:
    blocks = []
    for number, line in enumerate(_decode(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as error:
            raise UnreadableFile(f"{path.name} line {number}: broken JSON ({error}).",
                                 "Fix that line; each line must be an object like {\"text\": \"...\"}.") from None
        if not isinstance(record, dict) or not isinstance(record.get("text"), str):
            raise UnreadableFile(f"{path.name} line {number}: no \"text\" field with a string in it.",
                                 "Each line must be an object like {\"text\": \"...\", \"title\": \"...\"}.")
        title = record.get("title") or record.get("id") or f"record {number}"
        blocks.append(Block(record["text"], heading=str(title)))
    return Document(path.name, blocks)


def _decode(path: Path) -> str:
    data = path.read_bytes()
    if b"\x00" in data[:65536]:
        raise UnreadableFile(f"{path.name}: binary data, not text (it holds NUL bytes).",
                             f"Is it really a {path.suffix} file? Add the original document instead.")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    if best is None:
        raise UnreadableFile(f"{path.name}: not text in any known encoding (binary data?).",
                             "Save it as UTF-8 text, or add the original document.")
    return str(best)


class _Sections:
    """Collects text under a heading path and cuts a block each time the path changes."""

    def __init__(self) -> None:
        self.path: list[tuple[int, str]] = []
        self.parts: list[str] = []
        self.done: list[Block] = []

    def heading(self, level: int, title: str) -> None:
        self._flush()
        self.path = [(lvl, name) for lvl, name in self.path if lvl < level] + ([(level, title)] if title else [])

    def add(self, text: str, inline: bool = False) -> None:
        self.parts.append(text if inline else text + "\n")

    def blocks(self) -> list[Block]:
        self._flush()
        return self.done

    def _flush(self) -> None:
        lines = [" ".join(line.split()) for line in "".join(self.parts).splitlines()]
        text = "\n".join(_squeeze(lines)).strip()
        if text:
            self.done.append(Block(text, heading=HEADING_JOIN.join(name for _, name in self.path)))
        self.parts = []


def _squeeze(lines: list[str]) -> list[str]:
    """At most one empty line in a row: paragraph breaks survive, layout whitespace does not."""
    kept: list[str] = []
    for line in lines:
        if line or (kept and kept[-1]):
            kept.append(line)
    return kept


READERS: dict[str, Callable[[Path], Document]] = {
    ".pdf": _pdf, ".docx": _docx, ".html": _html, ".htm": _html, ".md": _markdown, ".markdown": _markdown,
    ".txt": _plain, ".text": _plain, ".jsonl": _jsonl}
