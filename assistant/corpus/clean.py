"""Normalisation of raw policy text, as it arrives from web pages and PDF extraction.

Two forms come out of here: the *display* form (original script, noise removed, what a user
reads in a citation) and the *index* form (also NFKC, simplified Chinese, lower-case), which is
what both documents and queries go through before matching.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from functools import lru_cache

CJK = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_CJK_CHAR = re.compile(f"[{CJK}]")

# Zero-width and bidi controls that survive NFKC and silently split words.
_INVISIBLE = re.compile("[\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff\u00ad]")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")

# A pinyin reading glued after a Chinese character: 區(qū), 產(chǎn). Only lower-case Latin letters with
# optional tone marks, so "(2026年)" or "(徐匯)" are left alone.
_PINYIN = re.compile(f"(?<=[{CJK}])\\(([a-zü]*[āáǎàēéěèīíǐìōóǒòūúǔùǖǘǚǜńňǹḿ][a-zü]*|[a-zü]{{1,6}})\\)")

# Page markers left by PDF extraction: "—２—", "- 3 -".
_PAGE_MARKER = re.compile(r"^\s*[—–\-]+\s*\d{1,3}\s*[—–\-]+\s*$")

# Letter-spaced headings from PDF letterheads: "上 海 市 人 民 政 府".
_SPACED_CJK = re.compile(f"^(?:[{CJK}] )+[{CJK}]$")

_ASCII_TO_CJK_PUNCT = {",": "，", ".": "。", ";": "；", ":": "：", "?": "？", "!": "！"}
_CJK_PUNCT_CONTEXT = re.compile(f"(?<=[{CJK}”」》）])([,.;:?!])(?![0-9A-Za-z])")

# Sentence ends after which a PDF line is a real paragraph end.
_HEADING_START = re.compile(r"^\s*(?:[一二三四五六七八九十]+、|[（(][一二三四五六七八九十]+[)）]|\d+\.(?!\d)|"
                            r"第[一二三四五六七八九十百零〇\d]+[章节節条條]|[（(]\d{1,2}[)）]|\d{1,2}、|附件)")


# Every numbering style the parser knows, for readers that rejoin lines (PDF) before cleaning.
_ANY_HEADING_START = re.compile(
    r"^\s*(?:[一二三四五六七八九十]+、|[（(][一二三四五六七八九十\d]{1,3}[)）]|\d{1,2}(?:\.(?!\d)|、)|"
    r"第[一二三四五六七八九十百零〇\d]+[章节節条條]|(?:Article|Chapter|Part)\s+\w+|[IVX]{1,4}\.?\s|\([a-zIVX]{1,4}\)|"
    r"附件|Annex|Attachment)")


def starts_heading(line: str) -> bool:
    """Whether a line opens a numbered heading (or an attachment) in any style the parser reads."""
    return bool(_ANY_HEADING_START.match(line))


def has_cjk(text: str) -> bool:
    return bool(_CJK_CHAR.search(text))


def strip_invisible(text: str) -> str:
    """Remove zero-width, bidi and control characters (keeps tab and newline)."""
    return _CONTROL.sub("", _INVISIBLE.sub("", text))


def strip_pinyin(text: str) -> str:
    """Drop pinyin readings glued after Chinese characters: '區(qū)域' -> '區域'."""
    return _PINYIN.sub("", text)


def restore_cjk_punctuation(text: str) -> str:
    """Undo NFKC's mapping of full-width punctuation inside Chinese text ('办理.' -> '办理。')."""
    text = _CJK_PUNCT_CONTEXT.sub(lambda m: _ASCII_TO_CJK_PUNCT[m.group(1)], text)
    return text.replace("«", "《").replace("»", "》")


def looks_wrapped(lines: list[str]) -> bool:
    """True when most lines share one width: text hard-wrapped by PDF extraction."""
    lengths = [len(ln) for ln in lines if ln.strip()]
    if len(lengths) < 20:
        return False
    width, _ = Counter(lengths).most_common(1)[0]
    near = sum(1 for n in lengths if abs(n - width) <= 3)
    return width >= 15 and near / len(lengths) > 0.5


def rejoin_wrapped(lines: list[str]) -> list[str]:
    """Join lines that PDF extraction broke at the page width back into paragraphs.

    A line continues the previous one when the previous one ran to (nearly) the full width and the
    line does not itself open a heading.
    """
    widths = Counter(len(ln) for ln in lines)
    width = widths.most_common(1)[0][0]
    out: list[str] = []
    prev_full = False
    for ln in lines:
        if out and prev_full and not _HEADING_START.match(ln):
            out[-1] += ln
        else:
            out.append(ln)
        prev_full = len(ln) >= width - 2
    return out


def clean_lines(raw: str) -> list[str]:
    """Display-form lines of a raw document: NFKC, no pinyin, no page markers, PDF lines rejoined.

    Returns non-empty, stripped lines; the original script (traditional stays traditional) is kept.
    """
    text = unicodedata.normalize("NFKC", strip_invisible(raw.replace("\r\n", "\n").replace("\r", "\n")))
    text = strip_pinyin(text)
    lines = []
    for ln in text.split("\n"):
        ln = ln.strip()
        if not ln or _PAGE_MARKER.match(ln):
            continue
        if _SPACED_CJK.match(ln):
            ln = ln.replace(" ", "")
        lines.append(ln)
    if lines and has_cjk("".join(lines[:50])) and looks_wrapped(lines):
        lines = rejoin_wrapped(lines)
    cjk_doc = has_cjk("".join(lines[:50]))
    # In Chinese text, spaces between Chinese characters are layout, not words.
    if cjk_doc:
        lines = [re.sub(f"(?<=[{CJK}]) +(?=[{CJK}])", "", ln) for ln in lines]
        lines = [restore_cjk_punctuation(ln) for ln in lines]
    return lines


@lru_cache(maxsize=1)
def _t2s():
    import opencc

    return opencc.OpenCC("t2s")


def to_simplified(text: str) -> str:
    """Traditional -> simplified Chinese (OpenCC t2s); other scripts pass through."""
    if not has_cjk(text):
        return text
    return _t2s().convert(text)


def folded(text: str) -> str:
    """Full-width and traditional forms folded (NFKC, simplified), case and everything else kept: the
    form question patterns are matched on."""
    return to_simplified(unicodedata.normalize("NFKC", text))


def normalize_for_index(text: str) -> str:
    """The matching form shared by documents and queries: NFKC, no pinyin, simplified, lower-case."""
    text = unicodedata.normalize("NFKC", strip_invisible(text))
    text = strip_pinyin(text)
    text = to_simplified(text)
    text = text.replace("’", "'").replace("‘", "'").replace("“", '"').replace("”", '"')
    return re.sub(r"\s+", " ", text).strip().lower()
