"""The elements of a JSON array read one by one, each with the line it starts on, in bounded memory.

Contract: `array_rows(path, options)` yields `(line, element)` for a file holding one JSON array, reading
the file through a window of about a megabyte plus the element being decoded. It raises the readers'
`BadInputError`s (broken JSON, not UTF-8, nesting too deep, a record over `max_record_chars`) naming the
line. Hand-written because the json module has no incremental parser and ijson gives no line numbers.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from core.data.options import PrepareOptions
from core.data.read_errors import broken, not_utf8, oversized, too_deep

CHUNK = 1 << 20
_DECODER = json.JSONDecoder()


def array_rows(path: Path, options: PrepareOptions) -> Iterator[tuple[int, Any]]:
    window = _Window(path)
    window.skip(" \t\r\n")
    window.position += 1  # the opening bracket, which made this file an array
    while True:
        window.skip(" \t\r\n,")
        if window.at_end():
            raise broken(path, window.line_at(len(window.text)), "the array is not closed with ]")
        if window.text[window.position] == "]":
            break
        line = window.line_at(window.position)
        value, size = window.decode(options)
        if size > options.max_record_chars:
            raise oversized(path, line, size, options)
        yield line, value
    window.position += 1
    window.skip(" \t\r\n")
    if not window.at_end():
        raise broken(path, window.line_at(window.position), "extra data after the closing ]")


class _Window:
    """The part of a file being decoded: text from a UTF-8 decoder fed in chunks, and a line count."""

    def __init__(self, path: Path):
        self.path, self.handle = path, open(path, "rb")
        self.decoder = codecs.getincrementaldecoder("utf-8-sig")()
        self.text, self.position, self.eof = "", 0, False
        self.mark, self.mark_line = 0, 1  # the line at index `mark`: lines are counted once, going forward

    def more(self) -> bool:
        """Append the next chunk; False at the end of the file."""
        if self.eof:
            return False
        chunk = self.handle.read(CHUNK)
        self.eof = not chunk
        try:
            decoded = self.decoder.decode(chunk, final=self.eof)
        except UnicodeDecodeError as error:
            line = self.line_at(len(self.text)) + chunk.count(b"\n", 0, max(0, error.start))
            raise not_utf8(self.path, line, error) from None
        if self.position > CHUNK:  # drop what is decoded, counting its lines, so the window stays small
            self.line_at(self.position)
            self.text, self.mark, self.position = self.text[self.position:], 0, 0
        self.text += decoded
        if self.eof:
            self.handle.close()
        return bool(chunk)

    def at_end(self) -> bool:
        while self.position >= len(self.text):
            if not self.more():
                return True
        return False

    def skip(self, characters: str) -> None:
        while not self.at_end() and self.text[self.position] in characters:
            self.position += 1

    def line_at(self, position: int) -> int:
        if position < self.mark:
            return self.mark_line - self.text.count("\n", position, self.mark)
        self.mark_line += self.text.count("\n", self.mark, position)
        self.mark = position
        return self.mark_line

    def decode(self, options: PrepareOptions) -> tuple[Any, int]:
        """The element at `position`, reading on while it is cut off by the window's end."""
        while True:
            start = self.position  # `more` may move the window, and the element's start with it
            try:
                value, end = _DECODER.raw_decode(self.text, start)
            except json.JSONDecodeError as error:
                if len(self.text) - start <= options.max_record_chars and self.more():
                    continue
                cut_off = error.pos >= len(self.text) - 1 or error.msg.startswith("Unterminated")
                if cut_off and not self.eof:  # the rest is still in the file: a record past the limit
                    raise oversized(self.path, self.line_at(start), None, options) from None
                raise broken(self.path, self.line_at(error.pos), error) from None
            except RecursionError:
                raise too_deep(self.path, self.line_at(start)) from None
            self.position = end
            return value, end - start
