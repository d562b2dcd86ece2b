"""Checkable facts in a sentence: numbers (in any notation) and named programmes.

Numbers are compared as values, so "175 billion yuan", "1750亿元" and "１７５０亿" are one fact, and
"三十" equals "30". Named programmes are the quoted names (“Hundred Enterprises Growth Plan”).
"""

from __future__ import annotations

import re

from ..corpus.clean import normalize_for_index

_CN_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_CN_SMALL = {"十": 10, "百": 100, "千": 1000}
_CN_BIG = {"万": 10_000, "亿": 100_000_000}
_EN_SCALE = {"thousand": 1e3, "million": 1e6, "billion": 1e9, "trillion": 1e12}
_ZH_SCALE = {"百": 1e2, "千": 1e3, "万": 1e4, "百万": 1e6, "千万": 1e7, "亿": 1e8, "万亿": 1e12}

# Chinese text glues numbers to the characters around them ("最高补贴500万元"), so only a Latin letter,
# digit or dot before a number makes it part of something else ("v2", "1.5").
_ARABIC = re.compile(r"(?<![0-9a-z.])(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?\s*(万亿|千万|百万|亿|万|千|百|thousand|million|"
                     r"billion|trillion)?", re.I)
# Chinese numerals that count something. A bare "一" is too often a word ("一网通办"), so single
# characters count only when followed by a measure word or unit. A run right after an Arabic number
# is that number's scale ("2万亿"), already read above.
_CN_NUMBER = re.compile(r"(?<![0-9.])(?:[零〇一二两三四五六七八九十百千万亿]{2,}|[一二两三四五六七八九十](?=[个家项条类批年月日天倍成%]))")
# One or two digits: "[2025]" in "JDPG G [2025] No. 5" is part of a document number, not a citation.
_MARKER = re.compile(r"\[\d{1,2}(?:\s*[,，、]\s*\d{1,2})*\]")
_QUOTED = re.compile(r"[“\"「『]([^”\"」』]{3,60})[”\"」』]")


def cn_to_int(s: str) -> int | None:
    """'一百七十五亿' -> 17500000000; '三十' -> 30; '二〇二五' -> 2025. None if not a number."""
    if all(c in _CN_DIGITS for c in s):  # digit by digit, like a year
        return int("".join(str(_CN_DIGITS[c]) for c in s))
    if not any(c in _CN_DIGITS or c == "十" for c in s):  # scale words alone ("万亿") count nothing
        return None
    total, section, digit = 0, 0, None
    for c in s:
        if c in _CN_DIGITS:
            digit = _CN_DIGITS[c]
        elif c in _CN_SMALL:
            section += (1 if digit is None else digit) * _CN_SMALL[c]
            digit = None
        elif c in _CN_BIG:
            section += digit or 0
            total = (total + section) * _CN_BIG[c] if c == "亿" else total + section * _CN_BIG[c]
            section, digit = 0, None
        else:
            return None
    return total + section + (digit or 0)


def numbers(text: str) -> set[float]:
    """Every number in `text` as a value (scales applied), ignoring citation markers."""
    text = normalize_for_index(_MARKER.sub(" ", text))
    found = _digit_values(text)
    for m in _CN_NUMBER.finditer(text):
        value = cn_to_int(m.group(0))
        if value is not None:
            found.add(float(value))
    return found


def digit_numbers(text: str) -> set[float]:
    """The numbers written in digits (scales applied): what a translation must carry over unchanged.
    Chinese numerals are left out; many sit inside set phrases ("一批", "千行百业") a translation drops."""
    return _digit_values(normalize_for_index(_MARKER.sub(" ", text)))


def _digit_values(normalized: str) -> set[float]:
    found: set[float] = set()
    for m in _ARABIC.finditer(normalized):
        whole, frac, scale = m.groups()
        value = float(whole.replace(",", "") + (f".{frac}" if frac else ""))
        if scale:
            value *= _ZH_SCALE.get(scale, _EN_SCALE.get(scale.lower(), 1))
        found.add(round(value, 6))
    return found


# Digits that are part of a name, not a quantity: "5G", "3D", "H5", "B2B".
_NAMED_DIGITS = re.compile(r"(?<![A-Za-z0-9.])\d+[A-Z](?![A-Za-z0-9])|(?<![A-Za-z0-9])[A-Za-z]+\d+[A-Za-z]*(?![A-Za-z0-9])")


def figures(text: str) -> set[float]:
    """The numbers of a text other than years and names ("5G"): a year alone answers no 'how much'
    or 'how long'."""
    return {n for n in numbers(_NAMED_DIGITS.sub(" ", text)) if not (1990 <= n <= 2049 and n == int(n))}


def quoted_names(text: str) -> set[str]:
    """Quoted programme names, in index form."""
    return {normalize_for_index(m.group(1)) for m in _QUOTED.finditer(text)}


def markers(text: str) -> list[int]:
    """Citation numbers in order of appearance: '[1] ... [2, 3]' -> [1, 2, 3]."""
    out: list[int] = []
    for m in _MARKER.finditer(text):
        out.extend(int(n) for n in re.findall(r"\d+", m.group(0)))
    return out


def strip_markers(text: str) -> str:
    return _MARKER.sub("", text).strip()
