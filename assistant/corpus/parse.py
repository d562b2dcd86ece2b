"""Structure of a cleaned policy document: its metadata and every numbered measure.

Headings are recognised by their numbering style, each style with a fixed rank:
  rank 1  "I  Title", "II. Title", "一、标题"
  rank 2  "(I) Title", "(1) Title", "(一)标题"
  rank 3  "1. Title", "1.标题"
A heading with no heading below it is a measure; a heading with children is a section.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import date

from ..errors import CorpusError
from ..types import Document, Measure
from .catalog import CatalogEntry
from .clean import clean_lines, has_cjk, to_simplified

_ROMAN = "IVX"
_CN_NUM = "一二三四五六七八九十"

_HEADINGS_EN = [
    (1, re.compile(r"^([IVX]{1,4})(?:\.\s*|\s{2,}|\s(?=[A-Z]))(\S.*)$")),
    (2, re.compile(r"^\(([IVX]{1,4}|\d{1,2})\)\s*(\S.*)$")),
    (3, re.compile(r"^(\d{1,2})\.\s*([A-Za-z\"“].*)$")),
]
_HEADINGS_ZH = [
    (1, re.compile(f"^([{_CN_NUM}]+)、(.+)$")),
    (2, re.compile(f"^[（(]([{_CN_NUM}]+)[)）](.+)$")),
    (3, re.compile(r"^(\d{1,2})\.(?!\d)(.+)$")),
]

_DEPARTMENTS = re.compile(r"^\(Responsible (?:departments?|entity|entities|units?)\s*:\s*(.+?)\)\s*$", re.I)
_DEPARTMENT_SEPARATOR = re.compile(
    r",\s*(?:and\s+)?|(?:" + "|".join(f"(?<={w})" for w in ("Commission", "Committee", "Bureau", "Office",
                                                            "Government", "Centre", "Center")) + r")\s+and\s+")
_VALID_EN = re.compile(r"valid until ([A-Z][a-z]+ \d{1,2}, \d{4})")
_VALID_ZH = re.compile(r"有效期至(\d{4})年(\d{1,2})月(\d{1,2})日")
_CLOSING_EN = re.compile(r"^These Measures? shall\b")
_DATE_EN = re.compile(r"^\(?([A-Z][a-z]+ \d{1,2}, \d{4})\)?$")
_DATE_ZH = re.compile(r"^(\d{4})年(\d{1,2})月(\d{1,2})日$")
_DOCNO_EN = re.compile(r"^([A-Z]{2,6}\s+[A-Z]\s*[(\[]\d{4}[)\]]\s*No\.\s*\d+)$")
_DOCNO_ZH = re.compile(r"^(\S{2,8}?)\s*〔(\d{4})〕(\d+)号$")
_ORG_EN = re.compile(r"(Office|Government|Commission|Bureau|Municipality)$")
_ORG_ZH = re.compile(r"(办公室|办公厅|人民政府|委员会|局|辦公室)(文件)?$")
_TITLE_EN = re.compile(r"^(?:Action Plan|Several Measures|Measures|Opinions|Implementation Plan)\b[^.]*$")
_TITLE_ZH = re.compile(r"《([^》]{6,80})》")

_MONTHS = {m: i for i, m in enumerate(
    "January February March April May June July August September October November December".split(), 1)}


def _date_en(text: str) -> date:
    month, day, year = re.match(r"([A-Z][a-z]+) (\d{1,2}), (\d{4})", text).groups()
    return date(int(year), _MONTHS[month], int(day))


@dataclass
class _Node:
    rank: int
    number: str
    title: str
    body: list[str] = field(default_factory=list)
    children: list[_Node] = field(default_factory=list)
    departments: tuple[str, ...] = ()


@dataclass(frozen=True)
class ParsedDocument:
    document: Document
    measures: tuple[Measure, ...]


def _split_departments(text: str) -> tuple[str, ...]:
    # "and" inside a name ("Technology and Economy Commission") is not a separator: only an "and"
    # right after the word that ends a department's name is.
    parts = re.split(_DEPARTMENT_SEPARATOR, text)
    return tuple(p.strip().rstrip(".") for p in parts if p.strip())


def _heading(line: str, zh: bool) -> tuple[int, str, str] | None:
    for rank, pattern in _HEADINGS_ZH if zh else _HEADINGS_EN:
        m = pattern.match(line)
        if m:
            return rank, m.group(1), m.group(2).strip()
    return None


def _split_title(title: str, zh: bool) -> tuple[str, str]:
    """Split "Title. Body..." / "标题。正文" printed on one line into title and body."""
    if zh:
        m = re.match(r"^([^。，；]{1,30}?)[。](.+)$", title)
    else:
        m = re.match(r"^(.{3,160}?[a-z)”\"])\.\s+(\S.+)$", title)
    if m:
        return m.group(1).strip(), m.group(2).strip()
    return title.rstrip("。."), ""


def _build_tree(lines: list[str], zh: bool) -> tuple[list[str], list[_Node], list[str]]:
    """Returns (lines before the first heading, top-level nodes, closing lines)."""
    preamble: list[str] = []
    roots: list[_Node] = []
    stack: list[_Node] = []
    closing: list[str] = []
    for line in lines:
        if closing or (not zh and _CLOSING_EN.match(line)):
            closing.append(line)
            continue
        dept = _DEPARTMENTS.match(line)
        if dept and stack:
            stack[-1].departments = _split_departments(dept.group(1))
            continue
        head = _heading(line, zh)
        if head is None:
            (stack[-1].body if stack else preamble).append(line)
            continue
        rank, number, title = head
        while stack and stack[-1].rank >= rank:
            stack.pop()
        node = _Node(rank, number, title)
        (stack[-1].children if stack else roots).append(node)
        stack.append(node)
    return preamble, roots, closing


def _measures(roots: list[_Node], doc: Document, zh: bool) -> list[Measure]:
    out: list[Measure] = []

    def visit(node: _Node, path: tuple[_Node, ...]) -> None:
        if node.children:
            for child in node.children:
                visit(child, path + (node,))
            return
        # A measure title printed together with its text ("1. Focusing on key areas. In line with...").
        title, inline = node.title, ""
        if not node.body or node.rank == 2 and zh:
            title, inline = _split_title(node.title, zh)
        text = " ".join(([inline] if inline else []) + node.body) if not zh else "".join(
            ([inline] if inline else []) + node.body)
        if not text:
            raise CorpusError(f"{doc.source_file}: measure {node.number} '{title[:40]}' has no text")
        top = path[0] if path else node
        measure_id = f"{doc.doc_id}#{_roman_of(top.number) if path else ''}{'.' if path else ''}{_arabic(node.number)}"
        section_path = tuple(_heading_text(p, zh) for p in path)
        out.append(Measure(
            measure_id=measure_id,
            doc_id=doc.doc_id,
            number=node.number,
            title=title,
            section_path=section_path,
            text=text,
            departments=node.departments,
            label=_label(doc, path, node, title, zh),
        ))

    for root in roots:
        visit(root, ())
    return out


def _heading_text(node: _Node, zh: bool) -> str:
    if zh:
        return f"{node.number}、{node.title}" if node.rank == 1 else f"({node.number}){node.title}"
    return f"{node.number}. {node.title}" if node.rank == 1 else f"({node.number}) {node.title}"


def _arabic(number: str) -> str:
    """'3' -> '3', 'IV' -> '4', '二十' -> '20': one numbering for ids, whatever the printed style."""
    if number.isdigit():
        return str(int(number))
    if all(c in _ROMAN for c in number):
        return str(_roman_value(number))
    return str(_cn_value(number))


def _roman_of(number: str) -> str:
    n = int(_arabic(number))
    return ["", "I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X", "XI", "XII"][n]


def _roman_value(s: str) -> int:
    values = {"I": 1, "V": 5, "X": 10}
    total = 0
    for i, c in enumerate(s):
        v = values[c]
        total += -v if i + 1 < len(s) and values[s[i + 1]] > v else v
    return total


def _cn_value(s: str) -> int:
    digits = {c: i for i, c in enumerate("零一二三四五六七八九")}
    if s == "十":
        return 10
    if "十" in s:
        tens, _, ones = s.partition("十")
        return (digits[tens] if tens else 1) * 10 + (digits[ones] if ones else 0)
    return digits[s]


def _label(doc: Document, path: tuple[_Node, ...], node: _Node, title: str, zh: bool) -> str:
    if zh:
        title_s = to_simplified(title)
        if node.rank == 2 and path:  # 三(二) 智慧监管
            return f"{doc.short_title_zh} {path[0].number}({node.number}) {title_s}"
        return f"{doc.short_title_zh} 第{node.number}项 {title_s}"
    # Numbering that restarts per section needs the section to be unambiguous.
    where = f", {_heading_text(path[0], False)}" if path and doc.doc_id.startswith("zhangjiang") else ""
    kind = "Measure" if node.number.isdigit() else "Item"
    number = node.number if node.rank == 3 or not path else f"({node.number})"
    return f"{doc.short_title_en}{where}, {kind} {number} — {title}"


def _find_metadata(lines: list[str], closing: list[str], zh: bool) -> dict:
    meta: dict = {"doc_number": None, "issued": None, "issuer": None, "title": None,
                  "valid_until": None, "validity_text": None}
    head = lines[:40]
    for i, line in enumerate(head):
        if meta["doc_number"] is None:
            m = (_DOCNO_ZH if zh else _DOCNO_EN).match(line)
            if m:
                meta["doc_number"] = f"{m.group(1)}〔{m.group(2)}〕{m.group(3)}号" if zh else re.sub(r"\s+", " ", m.group(1))
        if meta["issued"] is None:
            m = (_DATE_ZH if zh else _DATE_EN).match(line)
            if m:
                meta["issued"] = date(*map(int, m.groups())) if zh else _date_en(m.group(1))
                if i > 0 and (_ORG_ZH if zh else _ORG_EN).search(head[i - 1]):
                    meta["issuer"] = head[i - 1]
    if meta["issuer"] is None and zh:
        # Letterhead: "上海市人民政府办公厅文件"
        for line in head[:5]:
            if line.endswith("文件") and _ORG_ZH.search(line):
                meta["issuer"] = line[: -len("文件")]
                break
    if meta["issuer"] is None and closing:
        orgs = [ln for ln in closing if _ORG_EN.search(ln) and len(ln) < 80]
        if orgs:
            meta["issuer"] = "; ".join(orgs)
    if zh:
        m = _TITLE_ZH.search("".join(head))
        if m:
            meta["title"] = re.sub(r"\s+", "", m.group(1))
    else:
        titles = [ln for ln in head if _TITLE_EN.match(ln) and len(ln) < 250]
        if titles:
            meta["title"] = titles[0]
    for line in lines + closing:
        m = _VALID_ZH.search(line) if zh else _VALID_EN.search(line)
        if m:
            meta["valid_until"] = date(*map(int, m.groups())) if zh else _date_en(m.group(1))
            sentence = re.search(r"[^.。]*" + re.escape(m.group(0)) + r"[^.。]*[.。]?", line)
            meta["validity_text"] = sentence.group(0).strip() if sentence else m.group(0)
            break
    return meta


def parse_document(raw: str, source_file: str, entry: CatalogEntry) -> ParsedDocument:
    """Parse one raw policy text into its Document and Measures.

    Example:
        >>> parsed = parse_document(open("seeds/004_5c623842aeda65ec.txt").read(), "004...", entry)
        >>> parsed.document.doc_number
        '沪府办发〔2024〕1号'
    """
    if not raw.strip():
        raise CorpusError(f"{source_file}: the document is empty")
    lines = clean_lines(raw)
    zh = has_cjk("".join(lines[:50]))
    preamble, roots, closing = _build_tree(lines, zh)
    if not roots:
        raise CorpusError(f"{source_file}: no numbered headings found; is this a policy document?")
    meta = _find_metadata(preamble, closing, zh)
    title = meta["title"] or entry.title
    issuer = meta["issuer"] or entry.issuer
    if not title:
        raise CorpusError(f"{source_file}: no title in the text; add one to seeds/catalog.json")
    doc = Document(
        doc_id=entry.doc_id,
        source_file=source_file,
        sha256=hashlib.sha256(raw.encode("utf-8")).hexdigest(),
        language="zh" if zh else "en",
        title=to_simplified(title) if zh else title,
        short_title_en=entry.short_title_en,
        short_title_zh=entry.short_title_zh,
        district=entry.district,
        issuer=(to_simplified(issuer) if zh else issuer) or "",
        doc_number=meta["doc_number"],
        issued=meta["issued"],
        valid_until=meta["valid_until"],
        validity_text=meta["validity_text"],
    )
    return ParsedDocument(doc, tuple(_measures(roots, doc, zh)))
