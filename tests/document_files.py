"""Real document files for the Documents tests, written by the libraries that read them.

PDFs are made with pypdf (a page, a Helvetica font and a text-drawing content stream), so they carry a
real text layer that any PDF reader extracts; `encrypt` locks one with a user password. DOCX files are
made with python-docx, with real "Heading N" styles.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "assets" / "documents"


def make_pdf(path: Path, pages: list[str], encrypt: str | None = None) -> Path:
    """One page per string (lines split on newlines); an empty string makes a page with no text layer."""
    from pypdf import PdfWriter
    from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject

    writer = PdfWriter()
    font = writer._add_object(DictionaryObject({  # a standard-14 font: no font file needed
        NameObject("/Type"): NameObject("/Font"), NameObject("/Subtype"): NameObject("/Type1"),
        NameObject("/BaseFont"): NameObject("/Helvetica"), NameObject("/Encoding"): NameObject("/WinAnsiEncoding")}))
    for text in pages:
        page = writer.add_blank_page(width=612, height=792)
        page[NameObject("/Resources")] = DictionaryObject({NameObject("/Font"): DictionaryObject(
            {NameObject("/F1"): font})})
        stream = DecodedStreamObject()
        stream.set_data(_draw(text).encode("latin-1"))
        page[NameObject("/Contents")] = writer._add_object(stream)
    if encrypt:
        writer.encrypt(user_password=encrypt, owner_password=encrypt + "-owner", algorithm="AES-128")
    with open(path, "wb") as handle:
        writer.write(handle)
    return path


def _draw(text: str) -> str:
    if not text:
        return "0 0 1 rg 72 600 200 100 re f"  # a filled rectangle: ink, but no text
    lines = [line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)") for line in text.splitlines()]
    body = " T* ".join(f"({line}) Tj" for line in lines)
    return f"BT /F1 11 Tf 14 TL 72 720 Td {body} ET"


def make_docx(path: Path, sections: list[tuple[int, str, list[str]]]) -> Path:
    """Sections of (heading level, heading, paragraphs); level 0 is the document title."""
    import docx

    document = docx.Document()
    for level, heading, paragraphs in sections:
        document.add_heading(heading, level=level)
        for paragraph in paragraphs:
            document.add_paragraph(paragraph)
    document.save(str(path))
    return path
