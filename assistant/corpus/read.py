"""Policy files -> raw text, one paragraph a line: plain text, Markdown, PDF (text layer), DOCX and HTML.

Each format is read with a kept library (markdown-it-py, pypdf, python-docx, BeautifulSoup); cleaning and parsing
then treat the text alike, whatever it came from. Imports are deferred so the core loads fast.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..errors import CorpusError
from .clean import has_cjk, starts_heading

FORMATS = {".txt": "text", ".text": "text", ".md": "markdown", ".markdown": "markdown", ".pdf": "pdf",
           ".docx": "docx", ".html": "html", ".htm": "html"}
MAX_BYTES = 20 * 1024 * 1024  # a policy document is a few hundred kilobytes; anything far larger is not one


def read_document(path: Path) -> str:
    """The text of a policy file. Raises CorpusError naming the fix when it cannot be read."""
    path = Path(path)
    kind = FORMATS.get(path.suffix.lower())
    if kind is None:
        raise CorpusError(f"{path.name}: unsupported format {path.suffix or '(none)'}; use one of "
                          f"{', '.join(sorted(FORMATS))}")
    if not path.is_file():
        raise CorpusError(f"{path}: no such file")
    if path.stat().st_size > MAX_BYTES:
        raise CorpusError(f"{path.name}: {path.stat().st_size // 1024 // 1024} MB is too large for a policy document "
                          f"(at most {MAX_BYTES // 1024 // 1024} MB)")
    data = path.read_bytes()
    try:
        text = {"text": _text, "markdown": _markdown, "pdf": _pdf, "docx": _docx, "html": _html}[kind](data, path.name)
    except CorpusError:
        raise
    except Exception as exc:  # a damaged file: each library raises its own kinds
        raise CorpusError(f"{path.name}: could not be read as {kind.upper()} ({type(exc).__name__}: {exc})") from exc
    if not text.strip():
        hint = " (a scanned PDF has no text layer: run OCR first)" if kind == "pdf" else ""
        raise CorpusError(f"{path.name}: no text found{hint}")
    return text


def _text(data: bytes, name: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CorpusError(f"{name} is not UTF-8 text: convert it (e.g. `iconv -f GB18030 -t UTF-8`)") from exc


def _markdown(data: bytes, name: str) -> str:
    """One line per block, markup dropped; an ordered list item keeps its number ("3. …"), which is
    how a measure is numbered."""
    from markdown_it import MarkdownIt

    lines: list[str] = []
    prefix = ""
    for token in MarkdownIt("commonmark").parse(_text(data, name)):
        if token.type == "list_item_open" and token.info:
            prefix = f"{token.info}{token.markup} "
        elif token.type == "inline":
            # A soft break is the same paragraph wrapped in the source.
            breaks = {"softbreak": " ", "hardbreak": "\n"}
            parts = [breaks.get(c.type, c.content) for c in token.children or ()
                     if c.type in ("text", "code_inline", "softbreak", "hardbreak")]
            for piece in "".join(parts).split("\n"):
                lines.append(prefix + piece.strip())
                prefix = ""
        elif token.type in ("fence", "code_block"):
            lines.extend(token.content.splitlines())
    return "\n".join(lines)


def _pdf(data: bytes, name: str) -> str:
    import io

    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(data))
    if reader.is_encrypted:
        raise CorpusError(f"{name}: the PDF is encrypted; save an unprotected copy")
    # The layout mode keeps each line's extent, which tells a line the page width broke from a short
    # one that ends its paragraph.
    pages = [(page.extract_text(extraction_mode="layout") or "").splitlines() for page in reader.pages]
    return "\n".join(rejoin_pdf_lines(pages))


_PAGE_NUMBER = re.compile(r"^\s*[—–\-－]*\s*\d{1,3}\s*[—–\-－]*\s*$")
_PARAGRAPH_END = re.compile(r"[.。:：;；!?！？]$")


def rejoin_pdf_lines(pages: list[list[str]]) -> list[str]:
    """Paragraphs from the lines of PDF pages: a line reaching near the widest line's end continues on
    the next one, across a page break too, unless the next line opens a heading. Page numbers go."""
    lines = [[ln.strip() for ln in page if not _PAGE_NUMBER.match(ln)] for page in pages]
    width = max((len(ln) for page in lines for ln in page), default=0)
    out: list[str] = []
    joinable = False
    for page in lines:
        while page and not page[-1]:
            page.pop()
        start = 0
        while start < len(page) and not page[start]:
            start += 1
        for line in page[start:]:
            if not line:
                joinable = False
                out.append("")
                continue
            if joinable and not starts_heading(line):
                glue = "" if has_cjk(out[-1][-1:]) and has_cjk(line[:1]) else " "
                out[-1] += glue + line
            else:
                out.append(line)
            joinable = len(line) >= 0.6 * width and not _PARAGRAPH_END.search(line)
        # `joinable` carries over: a paragraph whose last line ran to the width goes on over the page.
    return out


def _docx(data: bytes, name: str) -> str:
    import io

    from docx import Document as DocxDocument

    doc = DocxDocument(io.BytesIO(data))
    lines: list[str] = []
    body = doc.element.body
    # Paragraphs and tables in document order; a table row is one line, its cells joined.
    for child in body.iterchildren():
        tag = child.tag.rsplit("}", 1)[-1]
        if tag == "p":
            lines.append("".join(t.text or "" for t in child.iter() if t.tag.endswith("}t")))
        elif tag == "tbl":
            for row in child.iter():
                if row.tag.endswith("}tr"):
                    cells = ["".join(t.text or "" for t in tc.iter() if t.tag.endswith("}t"))
                             for tc in row.iterchildren() if tc.tag.endswith("}tc")]
                    lines.append("  ".join(c for c in cells if c))
    return "\n".join(lines)


_BLOCK_TAGS = ("p", "div", "li", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "br", "section", "article", "header",
               "footer", "table", "ul", "ol", "blockquote", "pre", "dt", "dd")


def _html(data: bytes, name: str) -> str:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(data, "html.parser")
    # Page furniture and code are not the document.
    for tag in soup(["script", "style", "noscript", "template", "nav", "iframe", "svg", "form", "button"]):
        tag.decompose()
    for tag in soup.find_all(style=re.compile(r"display\s*:\s*none", re.I)):
        tag.decompose()
    root = soup.find("article") or soup.find("main") or soup.body or soup
    for tag in root.find_all(_BLOCK_TAGS):
        tag.insert_before("\n")
        tag.insert_after("\n")
    text = root.get_text()
    return "\n".join(re.sub(r"[ \t\u00a0]+", " ", ln).strip() for ln in text.split("\n"))
