"""Structure of a cleaned policy document: its metadata and every numbered measure.

The parse is a short pipeline: clean lines -> split into preamble, body and closing -> a tree of
numbered headings -> measures (the leaves) -> metadata read from the preamble and the closing.

Headings are recognised by their numbering style, each style with a fixed rank (lower is outer):
  Chinese   第X章 / 第X节 (chapters), 第X条 (articles), 一、, (一), 1. or 1、, (1)
  English   Chapter N / Part N, Article N, I. / "I  Title", (I) or (1), 1., (a)
A heading with no heading below it is a measure; a heading with children is a section. An article
is always a measure: whatever is numbered inside it is its text. So is a measure whose text ends
with a colon ("as follows:", "给予以下支持："): the list it introduces is part of it.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import date, timedelta

from ..errors import CorpusError
from ..types import Document, Measure
from .catalog import CatalogEntry
from .clean import clean_lines, has_cjk, to_simplified
from .places import district_of, slug

_CN_NUM = "一二三四五六七八九十"
_CN_COUNT = "零〇一二三四五六七八九十百两"

ARTICLE = "article"


@dataclass(frozen=True)
class _Style:
    key: str
    rank: int
    pattern: re.Pattern


_HEADINGS_EN = [
    _Style("chapter", -2, re.compile(r"^(?:Chapter|CHAPTER|Part|PART)\s+([IVXLC]{1,6}|\d{1,3})\b[.:]?\s*(.*)$")),
    _Style("section", -1, re.compile(r"^(?:Section|SECTION)\s+(\d{1,3}|[IVXLC]{1,6})\b[.:]?\s*(.*)$")),
    _Style(ARTICLE, 0, re.compile(r"^(?:Article|ARTICLE)\s+(\d{1,3}|[IVXLC]{1,6})\b[.:]?\s*(.*)$")),
    _Style("roman", 1, re.compile(r"^([IVX]{1,4})(?:\.\s*|\s{2,}|\s(?=[A-Z]))(\S.*)$")),
    _Style("paren", 2, re.compile(r"^\(([IVX]{1,4}|\d{1,2})\)\s*(\S.*)$")),
    _Style("arabic", 3, re.compile(r"^(\d{1,2})\.\s*([A-Za-z\"“].*)$")),
    _Style("letter", 4, re.compile(r"^\(([a-z])\)\s*(\S.*)$")),
]
_HEADINGS_ZH = [
    _Style("chapter", -2, re.compile(f"^第([{_CN_COUNT}\\d]+)[章编]\\s*(.*)$")),
    _Style("part", -1, re.compile(f"^第([{_CN_COUNT}\\d]+)[节節]\\s*(.*)$")),
    _Style(ARTICLE, 0, re.compile(f"^第([{_CN_COUNT}\\d]+)[条條]\\s*(.*)$")),
    _Style("cn", 1, re.compile(f"^([{_CN_NUM}]+)、(.+)$")),
    _Style("cnparen", 2, re.compile(f"^[（(]([{_CN_NUM}]+)[)）](.+)$")),
    _Style("arabic", 3, re.compile(r"^(\d{1,2})(?:\.(?!\d)|、)(.+)$")),
    _Style("paren", 4, re.compile(r"^\((\d{1,2})\)(.+)$")),
]

_DEPARTMENTS = re.compile(r"^\(Responsible (?:departments?|entity|entities|units?)\s*:\s*(.+?)\)\s*$", re.I)
_DEPARTMENTS_ZH = re.compile(r"^[(（]?(?:责任|牵头|负责|责任单位|牵头单位|实施)?(?:部门|单位)[:：]\s*(.+?)[)）]?$")
_DEPARTMENT_SEPARATOR = re.compile(
    r",\s*(?:and\s+)?|(?:" + "|".join(f"(?<={w})" for w in ("Commission", "Committee", "Bureau", "Office",
                                                            "Government", "Centre", "Center")) + r")\s+and\s+")
_MONTHS = {m: i for i, m in enumerate(
    "January February March April May June July August September October November December".split(), 1)}
_MONTH = "(?:" + "|".join(_MONTHS) + ")"
_DATE_EN_TEXT = rf"{_MONTH} \d{{1,2}}, \d{{4}}|\d{{1,2}} {_MONTH} \d{{4}}|\d{{4}}-\d{{2}}-\d{{2}}"
_DATE_ZH_TEXT = f"(?:\\d{{4}}|[{_CN_COUNT}]{{4}})年[\\d{_CN_COUNT}]{{1,3}}月[\\d{_CN_COUNT}]{{1,3}}日"
_DATE_EN = re.compile(rf"^\(?({_DATE_EN_TEXT})\)?$")
_DATE_ZH = re.compile(f"^[(（]?({_DATE_ZH_TEXT})[)）]?(?:印发|发布)?$")
_DOCNO_EN = re.compile(r"^([A-Z][A-Za-z]{0,9}(?:\s+[A-Z][A-Za-z]{0,9}){0,5}\s*[(\[]\d{4}[)\]]\s*No\.\s*\d+)$")
_DOCNO_ZH = re.compile(r"^(\S{1,10}?)\s*[〔\[【]\s*(\d{4})\s*[〕\]】]\s*(?:第\s*)?(\d{1,4})\s*号$")
_ORG_EN = re.compile(r"(Office|Government|Commission|Bureau|Municipality|Committee|Administration)$")
_ORG_ZH = re.compile(r"(办公室|办公厅|人民政府|委员会|局|辦公室|辦公廳|委員會)(文件)?$")
_TITLE_EN = re.compile(r"^(?:Action Plan|Several Measures|Measures|Opinions|Implementation Plan)\b[^.]*$")
_TITLE_EN_TYPE_FIRST = re.compile(
    r"^(?:(?:Several|Interim|Implementing|Detailed|Administrative|Supporting)\s+)*(?:Measures|Rules|Provisions|"
    r"Regulations|Guidelines|Opinions|Policies|Plan|Programme|Program)\s+(?:of|for|on|to)\b[^.:;]{5,240}$")
_TITLE_EN_LOOSE = re.compile(
    r"^(?!Notice\b)[A-Z][^.:;]{10,240}\b(?:Measures|Plan|Rules|Provisions|Regulations|Guidelines|Opinions|"
    r"Policies|Programme|Program)\b(?:\s*\([^)]*\))*$")
_NOTICE_EN = re.compile(r"^Notice\b.*?\bon (?:Issuing|Printing and Distributing|Distributing|Forwarding|Publishing) "
                        r"(?:the )?(.{10,240}?)$")
_TITLE_ZH = re.compile(r"《([^》]{6,80})》")
_NOTICE_ZH = re.compile(r"关于(?:印发|转发|发布|颁布)《([^》]{6,80})》的通知")
_NOTICE_ZH_PLAIN = re.compile(r"^(.{2,40}?)关于(?:印发|转发|发布)(.{6,80})的通知$")
_ISSUER_ZH = re.compile(r"^(.{2,40}?(?:人民政府办公室|人民政府办公厅|人民政府|办公室|办公厅|委员会|局))关于")
_TITLE_LINE_ZH = re.compile(
    r"^[^，。：；]{4,60}(?:办法|措施|方案|意见|细则|规定|规划|政策|计划|指引|纲要|通知|决定)(?:\([^)]{1,20}\))?$")

# What follows the measures: the effective clause, a signature and date, attachments, distribution.
_CLOSING_EN = re.compile(
    r"^These Measures? shall\b|^(?:These|This) (?:Measures?|Plan|Rules|Provisions|Regulations|Guidelines|Opinions|"
    r"Policy|Policies)\b[^.]{0,60}\b(?:come into (?:force|effect)|take effect|(?:be|become|are|is) effective|"
    r"(?:be|remain) valid|expire)|^(?:Annex|Attachment|Appendix)(?:es|s)?\s*\d*\s*[:.]?(?:\s|$)")
_CLOSING_ZH = re.compile(
    r"^本(?:若干)?(?:措施|办法|方案|细则|规定|意见|政策|通知|计划|实施细则|若干措施|若干政策)[^。]{0,40}"
    r"(?:施行|实施|执行|生效|有效期)|^附件\s*[\d一二三四五六七八九十]*\s*[:：]?|^[(（]此件.{2,8}[)）]$|^抄送[:：]")

# Validity and effect.
_VALID_ZH = re.compile(f"有效期(?:截)?至({_DATE_ZH_TEXT})")
_VALID_YEARS_ZH = re.compile(f"有效期(?:为)?([{_CN_COUNT}\\d]{{1,3}})年")
_EFFECTIVE_ZH = re.compile(f"自({_DATE_ZH_TEXT})起(?:施行|实施|执行|生效)")
# "（2026年1月20日北湖区人民政府办公室印发）" under a title: the issue date and the issuer in one line.
_ISSUED_BY_ZH = re.compile(f"^[(（]({_DATE_ZH_TEXT})\\s*(.{{2,40}}?)(?:印发|发布|制定)[)）]$")
_ISSUED_EN = re.compile(rf"^(?:Issued(?: on)?|Date of issue|Issue date|Date)\s*[:：]?\s*({_DATE_EN_TEXT})\.?$", re.I)
_VALID_EN = re.compile(rf"valid until ({_DATE_EN_TEXT})")
_VALID_YEARS_EN = re.compile(r"valid for (?:a period of )?(\w+) years?", re.I)
_EXPIRES_EN = re.compile(rf"(?:expire|expires|shall expire|in force until) on ({_DATE_EN_TEXT})")
_EFFECTIVE_EN = re.compile(
    rf"(?:come into (?:force|effect)|take effect|be effective|be implemented|become effective)"
    rf"(?: as of| from| on)? ({_DATE_EN_TEXT})")
_WORD_NUMBERS = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten".split())}


@dataclass
class _Node:
    style: str
    rank: int
    number: str
    title: str
    body: list[str] = field(default_factory=list)
    children: list[_Node] = field(default_factory=list)
    departments: tuple[str, ...] = ()
    folding: str | None = None  # style of the list this measure's text has taken in


@dataclass(frozen=True)
class ParsedDocument:
    document: Document
    measures: tuple[Measure, ...]
    warnings: tuple[str, ...] = ()


# ---------------------------------------------------------------- numbers and dates
def _cn_value(s: str) -> int:
    digits = {c: i for i, c in enumerate("零一二三四五六七八九")} | {"〇": 0, "两": 2}
    if s.isdigit():
        return int(s)
    total, current = 0, 0
    for c in s:
        if c == "百":
            total += (current or 1) * 100
            current = 0
        elif c == "十":
            total += (current or 1) * 10
            current = 0
        else:
            current = current * 10 + digits[c] if current and c in "零〇" else digits[c]
    return total + current


def _cn_digits(s: str) -> int:
    """'二〇二六' -> 2026 (digit by digit), '十二' -> 12, '2026' -> 2026."""
    if s.isdigit():
        return int(s)
    if len(s) == 4 and "十" not in s:
        digits = {c: i for i, c in enumerate("〇一二三四五六七八九")} | {"零": 0}
        return int("".join(str(digits[c]) for c in s))
    return _cn_value(s)


def _date_zh(text: str) -> date:
    y, m, d = re.match(f"([\\d{_CN_COUNT}]+)年([\\d{_CN_COUNT}]+)月([\\d{_CN_COUNT}]+)日", text).groups()
    return date(_cn_digits(y), _cn_digits(m), _cn_digits(d))


def _date_en(text: str) -> date:
    m = re.match(r"([A-Z][a-z]+) (\d{1,2}), (\d{4})", text)
    if m:
        month, day, year = m.groups()
        return date(int(year), _MONTHS[month], int(day))
    m = re.match(r"(\d{1,2}) ([A-Z][a-z]+) (\d{4})", text)
    if m:
        day, month, year = m.groups()
        return date(int(year), _MONTHS[month], int(day))
    return date.fromisoformat(text)


def _years_later(start: date, years: int) -> date:
    """Last day of a validity of `years` years starting on `start`."""
    try:
        end = start.replace(year=start.year + years)
    except ValueError:  # 29 February
        end = start.replace(year=start.year + years, day=28)
    return end - timedelta(days=1)


def _arabic(number: str) -> str:
    """'3' -> '3', 'IV' -> '4', '二十' -> '20': one numbering for ids, whatever the printed style."""
    if number.isdigit():
        return str(int(number))
    if number.isalpha() and number.isascii() and number.islower():
        return str(ord(number) - ord("a") + 1)
    if all(c in "IVXLC" for c in number):
        return str(_roman_value(number))
    return str(_cn_value(number))


def _roman_value(s: str) -> int:
    values = {"I": 1, "V": 5, "X": 10, "L": 50, "C": 100}
    total = 0
    for i, c in enumerate(s):
        v = values[c]
        total += -v if i + 1 < len(s) and values[s[i + 1]] > v else v
    return total


def _roman(n: int) -> str:
    out = ""
    for value, letters in ((100, "C"), (90, "XC"), (50, "L"), (40, "XL"), (10, "X"), (9, "IX"), (5, "V"),
                           (4, "IV"), (1, "I")):
        while n >= value:
            out += letters
            n -= value
    return out


def _roman_of(number: str) -> str:
    return _roman(int(_arabic(number)))


# ---------------------------------------------------------------- the tree of headings
def _split_departments(text: str) -> tuple[str, ...]:
    # "and" inside a name ("Technology and Economy Commission") is not a separator: only an "and"
    # right after the word that ends a department's name is.
    parts = re.split(_DEPARTMENT_SEPARATOR, text)
    return tuple(p.strip().rstrip(".") for p in parts if p.strip())


def _split_departments_zh(text: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in re.split(r"[、，,；;]", text.rstrip("。")) if p.strip())


def _heading(line: str, zh: bool) -> tuple[_Style, str, str] | None:
    for style in _HEADINGS_ZH if zh else _HEADINGS_EN:
        m = style.pattern.match(line)
        if m:
            return style, m.group(1), m.group(2).strip()
    return None


def _ends_with_colon(node: _Node) -> bool:
    last = node.body[-1] if node.body else node.title
    return last.rstrip().endswith((":", "："))


def _is_closing(lines: list[str], i: int, zh: bool) -> bool:
    """Whether line i, after the measures began, opens the closing part of the document."""
    line = lines[i]
    if _heading(line, zh) is not None:
        return False
    if (_CLOSING_ZH if zh else _CLOSING_EN).match(to_simplified(line) if zh else line):
        return True
    date_line = _DATE_ZH if zh else _DATE_EN
    if date_line.match(line):
        return True
    # A signature: an organisation's name on its own line, then a date.
    org = _ORG_ZH if zh else _ORG_EN
    if i + 1 < len(lines) and len(line) <= 60 and org.search(to_simplified(line) if zh else line):
        return bool(date_line.match(lines[i + 1]) or org.search(lines[i + 1]) and len(lines[i + 1]) <= 60)
    return False


def _build_tree(lines: list[str], zh: bool) -> tuple[list[str], list[_Node], list[str]]:
    """Returns (lines before the first heading, top-level nodes, closing lines)."""
    preamble: list[str] = []
    roots: list[_Node] = []
    stack: list[_Node] = []
    closing: list[str] = []
    for i, line in enumerate(lines):
        waiting = bool(stack) and not stack[-1].body and not stack[-1].children \
            and not _is_sentence(stack[-1].title, zh) and not (zh and stack[-1].title.rstrip().endswith(("。", "；")))
        if closing or (stack and not waiting and _is_closing(lines, i, zh)):
            closing.append(line)
            continue
        dept = _DEPARTMENTS.match(line) or (_DEPARTMENTS_ZH.match(to_simplified(line)) if zh else None)
        if dept and stack:
            stack[-1].departments = (_split_departments_zh if zh else _split_departments)(dept.group(1))
            continue
        head = _heading(line, zh)
        if head is not None and stack:
            top = stack[-1]
            style = head[0]
            inside_article = top.style == ARTICLE and style.rank > -1 and style.key != ARTICLE
            if top.folding == style.key or inside_article:
                head = None
            elif top.folding is None and style.key != top.style and style.rank > -1 and _ends_with_colon(top) \
                    and (top.rank >= 2 or not top.body):
                top.folding = style.key  # the measure introduces a list: its items are its text
                head = None
        if head is None:
            (stack[-1].body if stack else preamble).append(line)
            continue
        style, number, title = head
        while stack and stack[-1].rank >= style.rank:
            stack.pop()
        node = _Node(style.key, style.rank, number, title)
        (stack[-1].children if stack else roots).append(node)
        stack.append(node)
    return preamble, roots, closing


# ---------------------------------------------------------------- measures
def _split_title(title: str, zh: bool, max_words: int = 40) -> tuple[str, str]:
    """Split "Title. Body..." / "标题。正文" printed on one line into title and body."""
    if zh:
        m = re.match(r"^【([^】]{1,30})】(.+)$", title) or re.match(r"^([^。，；]{1,30}?)[。](.+)$", title)
    else:
        m = re.match(r"^(.{3,160}?[a-z)”\"])\.\s+(\S.+)$", title)
        if m and len(m.group(1).split()) > max_words:  # a first sentence, not a title
            m = None
    if m:
        return m.group(1).strip(), m.group(2).strip()
    return title.rstrip("。."), ""


_TRAILING_DEPARTMENTS_ZH = re.compile(r"[(（](?:责任|牵头|负责|实施)(?:单位|部门)[:：]([^()（）]+)[)）]$")
_TRAILING_DEPARTMENTS_EN = re.compile(r"\s*\(Responsible (?:departments?|units?|entity|entities)\s*:\s*([^()]+)\)$", re.I)


def _trailing_departments(text: str, zh: bool, known: tuple[str, ...]) -> tuple[str, tuple[str, ...]]:
    """'…给予奖励。(责任单位:区科技局、区财政局)' -> the text without it, and the departments it names."""
    if known:
        return text, known
    m = (_TRAILING_DEPARTMENTS_ZH if zh else _TRAILING_DEPARTMENTS_EN).search(to_simplified(text) if zh else text)
    if not m:
        return text, known
    names = _split_departments_zh(m.group(1)) if zh else _split_departments(m.group(1))
    return text[:m.start()].rstrip(), names


def _is_sentence(text: str, zh: bool) -> bool:
    """A heading line that is a whole sentence of policy text rather than a title."""
    if zh:
        return len(text) > 30 or bool(re.search(r"[，；：]", text)) and len(text) > 12
    return len(text.split()) > 20 or text.rstrip().endswith((".", ":", ";")) and len(text.split()) > 8


def _restarts_per_section(roots: list[_Node]) -> bool:
    """True when every top section after the first numbers its measures from 1 again."""
    sections = [r for r in roots if r.children]
    if len(sections) < 2:
        return False

    def first_leaf(node: _Node) -> _Node:
        return first_leaf(node.children[0]) if node.children else node

    return all(_arabic(first_leaf(s).number) == "1" for s in sections[1:])


def _heading_text(node: _Node, zh: bool) -> str:
    if zh:
        if node.style == "cn":
            return f"{node.number}、{node.title}"
        if node.style in ("chapter", "part"):
            return f"第{node.number}{'章' if node.style == 'chapter' else '节'} {node.title}".strip()
        if node.style == "arabic":
            return f"{node.number}.{node.title}"
        return f"({node.number}){node.title}"
    if node.style == "roman":
        return f"{node.number}. {node.title}"
    if node.style == "chapter":
        return f"Chapter {node.number} {node.title}".strip()
    if node.style == "arabic":
        return f"{node.number}. {node.title}"
    return f"({node.number}) {node.title}"


def _label(doc: Document, path: tuple[_Node, ...], node: _Node, title: str, zh: bool, restarts: bool) -> str:
    if zh:
        title_s = to_simplified(title)
        if node.style == ARTICLE:
            return f"{doc.short_title_zh} 第{node.number}条 {title_s}".rstrip()
        if node.rank > 2 and len(path) >= 2 and path[1].rank == 2:  # 二(一)1 科技型中小企业
            return f"{doc.short_title_zh} {path[0].number}({path[1].number}){node.number} {title_s}".rstrip()
        if node.rank == 2 and path:  # 三(二) 智慧监管
            return f"{doc.short_title_zh} {path[0].number}({node.number}) {title_s}".rstrip()
        where = f"{path[0].number}、" if path and restarts else ""
        return f"{doc.short_title_zh} {where}第{node.number}项 {title_s}".rstrip()
    if node.style in (ARTICLE, "section"):
        kind = "Article" if node.style == ARTICLE else "Section"
        return f"{doc.short_title_en}, {kind} {node.number}" + (f" — {title}" if title else "")
    # Numbering that restarts per section needs the section to be unambiguous.
    where = f", {_heading_text(path[0], False)}" if path and restarts else ""
    kind = "Measure" if node.number.isdigit() else "Item"
    number = node.number if node.rank == 3 or not path else f"({node.number})"
    return f"{doc.short_title_en}{where}, {kind} {number}" + (f" — {title}" if title else "")


def _measures(roots: list[_Node], doc: Document, zh: bool) -> tuple[list[Measure], list[str]]:
    out: list[Measure] = []
    warnings: list[str] = []
    full_ids: list[str] = []
    tops: list[int] = []
    restarts = _restarts_per_section(roots)

    def visit(node: _Node, path: tuple[_Node, ...]) -> None:
        if node.children:
            if node.body:
                warnings.append(f"text of section {_heading_text(node, zh)[:40]!r} is not part of any measure "
                                f"({sum(len(b) for b in node.body)} characters)")
            for child in node.children:
                visit(child, path + (node,))
            return
        # A measure title printed together with its text ("1. Focusing on key areas. In line with...").
        title, inline = node.title, ""
        if not node.body or node.rank == 2 and zh or node.style == ARTICLE:
            title, inline = _split_title(node.title, zh, 10 if node.style == ARTICLE else 40)
        if not inline and title and (_is_sentence(node.title, zh) or not node.body and (
                node.style == ARTICLE or node.title.rstrip().endswith(("。", ".", "；", ";")))):
            title, inline = "", node.title  # no title: the heading's line is the measure's text
        parts = ([inline] if inline else []) + node.body
        text = "".join(parts) if zh else " ".join(parts)
        if not text:
            raise CorpusError(f"{doc.source_file}: measure {node.number} '{title[:40]}' has no text")
        top = path[0] if path else node
        if node.style == ARTICLE or not path:
            measure_id = f"{doc.doc_id}#{_arabic(node.number)}"
        else:
            measure_id = f"{doc.doc_id}#{_roman_of(top.number)}.{_arabic(node.number)}"
        full_ids.append(f"{doc.doc_id}#{_roman_of(top.number)}." + ".".join(
            _arabic(n.number) for n in path[1:] + (node,)) if path and node.style != ARTICLE else measure_id)
        tops.append(id(top))
        text, departments = _trailing_departments(text, zh, node.departments)
        out.append(Measure(
            measure_id=measure_id,
            doc_id=doc.doc_id,
            number=node.number,
            title=title,
            section_path=tuple(_heading_text(p, zh) for p in path),
            text=text,
            departments=departments,
            label=_label(doc, path, node, title, zh, restarts),
        ))

    for root in roots:
        visit(root, ())
    # Numbering that restarts below the top section: where two measures would share an id, every level
    # of the tree names them.
    counts = Counter(m.measure_id for m in out)
    crowded = {top for m, top in zip(out, tops, strict=True) if counts[m.measure_id] > 1}
    out = [replace(m, measure_id=full) if top in crowded else m
           for m, full, top in zip(out, full_ids, tops, strict=True)]
    counts = Counter(m.measure_id for m in out)
    if len(counts) < len(out):
        doubled = sorted(k for k, n in counts.items() if n > 1)
        raise CorpusError(f"{doc.source_file}: two measures are numbered alike in one place ({', '.join(doubled)}); "
                          f"fix the numbering")
    return out, warnings


# ---------------------------------------------------------------- metadata
@dataclass
class _Meta:
    title: str | None = None
    doc_number: str | None = None
    issuer: str | None = None
    issued: date | None = None
    effective: date | None = None
    valid_until: date | None = None
    validity_text: str | None = None


_ARTICLE_PREFIX = re.compile(f"^(?:第[{_CN_COUNT}\\d]+条\\s*|Article\\s+\\w+[.:]?\\s+)")


def _sentence_around(line: str, found: str) -> str:
    sentence = re.search(r"[^.。]*" + re.escape(found) + r"[^.。]*[.。]?", line)
    return _ARTICLE_PREFIX.sub("", sentence.group(0).strip() if sentence else found)


def _find_title(head: list[str], zh: bool) -> str | None:
    if zh:
        joined = "".join(to_simplified(ln) for ln in head)
        m = _NOTICE_ZH.search(joined)
        if m:
            return re.sub(r"\s+", "", m.group(1))
        m = _TITLE_ZH.search("".join(head))
        if m:
            return re.sub(r"\s+", "", m.group(1))
        for line in head:
            simple = to_simplified(line)
            plain = _NOTICE_ZH_PLAIN.match(simple)
            if plain:
                return plain.group(2)
            if _TITLE_LINE_ZH.match(simple) and not simple.endswith("文件"):
                return line
        return None
    titles = [ln for ln in head if _TITLE_EN.match(ln) and len(ln) < 250]
    if titles:
        return titles[0]
    titles = [ln for ln in head if _TITLE_EN_TYPE_FIRST.match(ln) or _TITLE_EN_LOOSE.match(ln)]
    if titles:
        return titles[0]
    for line in head:
        m = _NOTICE_EN.match(line)
        if m:
            return m.group(1).rstrip(".")
    return None


def _find_metadata(preamble: list[str], body: list[str], closing: list[str], zh: bool) -> _Meta:
    meta = _Meta()
    head = preamble[:40]
    date_line = _DATE_ZH if zh else _DATE_EN
    org = _ORG_ZH if zh else _ORG_EN
    for i, line in enumerate(head):
        if meta.doc_number is None:
            m = _DOCNO_ZH.match(to_simplified(line)) if zh else _DOCNO_EN.match(line)
            if m:
                meta.doc_number = f"{m.group(1)}〔{m.group(2)}〕{m.group(3)}号" if zh else re.sub(r"\s+", " ", m.group(1))
        if meta.issued is None:
            m = date_line.match(line) or (_ISSUED_EN.match(line) if not zh else None)
            if m:
                meta.issued = _date_zh(m.group(1)) if zh else _date_en(m.group(1))
                if i > 0 and org.search(to_simplified(head[i - 1]) if zh else head[i - 1]):
                    meta.issuer = head[i - 1]
            elif zh and (m := _ISSUED_BY_ZH.match(to_simplified(line))):
                meta.issued = _date_zh(m.group(1))
                if _ORG_ZH.search(m.group(2)):
                    meta.issuer = meta.issuer or m.group(2)
    if meta.issuer is None and zh:
        # Letterhead: "上海市人民政府办公厅文件"
        for line in head[:5]:
            if line.endswith("文件") and _ORG_ZH.search(line):
                meta.issuer = line[: -len("文件")]
                break
    # A signature and date after the measures.
    for i, line in enumerate(closing):
        m = date_line.match(line)
        if m:
            if meta.issued is None:
                meta.issued = _date_zh(m.group(1)) if zh else _date_en(m.group(1))
            if zh and meta.issuer is None and i > 0 and _ORG_ZH.search(to_simplified(closing[i - 1])):
                meta.issuer = closing[i - 1]
            break
    if meta.issuer is None and not zh:  # a letterhead: the issuing body's name as the first line
        meta.issuer = next((ln for ln in head[:2] if _ORG_EN.search(ln) and len(ln) < 80), None)
    if meta.issuer is None and closing and not zh:
        orgs = [ln for ln in closing if _ORG_EN.search(ln) and len(ln) < 80]
        if orgs:
            meta.issuer = "; ".join(orgs)
    if meta.issuer is None and zh:
        for line in head[:8]:
            m = _ISSUER_ZH.match(to_simplified(line))
            if m:
                meta.issuer = m.group(1)
                break
    meta.title = _find_title(head, zh)
    _find_validity(meta, closing + body + preamble, zh)
    return meta


def _find_validity(meta: _Meta, lines: list[str], zh: bool) -> None:
    """Effective date and end of validity, from the first sentence that states them."""
    for line in lines:
        text = to_simplified(line) if zh else line
        m = (_EFFECTIVE_ZH if zh else _EFFECTIVE_EN).search(text)
        if m and meta.effective is None:
            meta.effective = _date_zh(m.group(1)) if zh else _date_en(m.group(1))
        m = _VALID_ZH.search(text) if zh else (_VALID_EN.search(text) or _EXPIRES_EN.search(text))
        if m:
            meta.valid_until = _date_zh(m.group(1)) if zh else _date_en(m.group(1))
            meta.validity_text = _sentence_around(text, m.group(0))
            break
        m = (_VALID_YEARS_ZH if zh else _VALID_YEARS_EN).search(text)
        if m:
            count = m.group(1).lower()
            years = _cn_value(count) if zh else int(count) if count.isdigit() else _WORD_NUMBERS.get(count)
            start = meta.effective or meta.issued
            if years and start:
                meta.valid_until = _years_later(start, years)
            meta.validity_text = _sentence_around(text, m.group(0))
            break


# ---------------------------------------------------------------- the whole document
def _english_name(place, issued: date | None) -> str:
    """What an English answer calls a Chinese document nobody has named in English: its place and date.
    (The catalog's short_title_en gives a better name.)"""
    where = f"{place.name_en} {'District' if place.level == 'district' else 'City'}" if place else "Chinese"
    when = f" of {issued:%B %Y}" if issued else ""
    return f"{where} policy{when} (Chinese text)"


def _structure_error(source_file: str, lines: list[str]) -> CorpusError:
    shown = " | ".join(ln[:50] for ln in lines[:4])
    return CorpusError(
        f"{source_file}: no numbered headings found; is this a policy document? Looked for 第X条, 一、, (一), 1., "
        f"(1), Article N and I. headings in {len(lines)} lines; it begins: {shown}")


def parse_document(raw: str, source_file: str, entry: CatalogEntry | None = None) -> ParsedDocument:
    """Parse one raw policy text into its Document and Measures.

    `entry` (from the catalog) overrides what the text does not say well: the document id, district and
    short titles; its title and issuer are used only where the text states none.

    Example:
        >>> parsed = parse_document(open("seeds/004_5c623842aeda65ec.txt").read(), "004...", entry)
        >>> parsed.document.doc_number
        '沪府办发〔2024〕1号'
    """
    entry = entry or CatalogEntry()
    if not raw.strip():
        raise CorpusError(f"{source_file}: the document is empty")
    lines = clean_lines(raw)
    zh = has_cjk("".join(lines[:50]))
    preamble, roots, closing = _build_tree(lines, zh)
    if not roots:
        raise _structure_error(source_file, lines)
    body = [ln for ln in lines[len(preamble):len(lines) - len(closing)]]
    meta = _find_metadata(preamble, body, closing, zh)
    title = meta.title or entry.title
    issuer = meta.issuer or entry.issuer
    if not title:
        raise CorpusError(f"{source_file}: no title in the text; give one (catalog.json \"title\", or --title)")
    title = to_simplified(title) if zh else title
    issuer = (to_simplified(issuer) if zh and issuer else issuer) or ""
    sha = hashlib.sha256(raw.encode("utf-8")).hexdigest()
    place = district_of(issuer, title)
    district = entry.district or (place.name_en if place else "")
    year = (meta.issued or meta.effective).year if (meta.issued or meta.effective) else None
    doc_id = entry.doc_id or "-".join(x for x in (slug(district) or "doc", str(year or ""), sha[:6]) if x)
    warnings: list[str] = []
    if not issuer:
        warnings.append("no issuer found in the text")
    if not district:
        warnings.append("no district or city found in the issuer or title")
    if meta.issued is None:
        warnings.append("no issue date found in the text")
    if meta.doc_number is None:
        warnings.append("no document number found in the text")
    if any(re.match(r"^(?:附件|Annex|Attachment|Appendix)", to_simplified(ln)) for ln in closing):
        warnings.append(f"attachments after the measures are not indexed ({sum(len(c) for c in closing)} "
                        f"characters of closing text)")
    doc = Document(
        doc_id=doc_id,
        source_file=source_file,
        sha256=sha,
        language="zh" if zh else "en",
        title=title,
        short_title_en=entry.short_title_en or (_english_name(place, meta.issued) if zh else title),
        short_title_zh=entry.short_title_zh or title,
        district=district,
        issuer=issuer,
        doc_number=meta.doc_number,
        issued=meta.issued,
        valid_until=meta.valid_until,
        validity_text=meta.validity_text,
        effective=meta.effective,
        supersedes=entry.supersedes,
    )
    measures, measure_warnings = _measures(roots, doc, zh)
    return ParsedDocument(doc, tuple(measures), tuple(warnings + measure_warnings))
