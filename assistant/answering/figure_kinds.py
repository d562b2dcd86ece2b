"""The kind of figure a question asks for, and whether a text states a figure of that kind.

"How much is the listing reward?" is answered by an amount, not by a count of listed companies;
"how much space?" by an area; "until when?" by a date or period; "多少家?" by a count. The patterns
are the languages' (units and question words), not any document's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..corpus.clean import folded
from .details import DETAILS, SPELLED_NUMBERS, asked_detail
from .facts import figures, strip_markers
from .gate import QUANTITY_QUESTION

_NUMBER = r"\d[\d,.]*\s*(?:万|亿|千|百)?"
_UNITS = {
    "amount": re.compile(
        rf"{_NUMBER}\s*(?:元|块钱)|(?:rmb|yuan|cny|¥|￥)\s*\d|\d[\d,.]*\s*(?:million|billion|thousand|hundred)?\s*"
        r"(?:yuan|rmb)\b|\d\s*%|百分之|\bper ?cent\b|\d\s*倍|[一二两三四五六七八九十百千]+\s*(?:万|亿)?元", re.I),
    "area": re.compile(rf"{_NUMBER}\s*(?:平方米|平方公里|平米|㎡|亩|公顷)|\d[\d,.]*\s*(?:million |thousand )?"
                       r"(?:square (?:met(?:er|re)s?|kilomet(?:er|re)s?)|sq\.? ?m\b|m2\b|hectares?)", re.I),
    "period": re.compile(r"\d+\s*(?:个)?(?:年|个月|月|天|日|周|工作日)|[一二两三四五六七八九十]+\s*(?:个)?(?:年|月|天|日|周|工作日)|"
                         rf"(?<!\d)(?:19|20)\d\d(?!\d)|\b(?:\d+|{SPELLED_NUMBERS})[\s-]*(?:working |calendar )?"
                         r"(?:days?|weeks?|months?|years?)\b|年底|年内|"
                         r"\b(?:january|february|march|april|may|june|july|august|september|october|november|december)\s+\d"
                         r"|\b\d{1,2}\s+(?:january|february|march|april|may|june|july|august|september|october|november|"
                         r"december)\b|\bin (?:january|february|march|april|may|june|july|august|september|october|"
                         r"november|december)\b", re.I),
}

_ASKED = (
    ("area", re.compile(r"面积|多少平|多大(?:的)?(?:空间|场地|地方|面积)|空间.{0,6}多少|多少.{0,4}空间|how much (?:floor ?)?"
                        r"(?:space|land|area|room)|how (?:big|large)|square met", re.I)),
    ("amount", re.compile(r"多少钱|多少元|多少万|金额|补贴多少|奖励多少|资助多少|(?:补贴|奖励|资助|扶持|补助|奖金)[^。？?]{0,8}"
                          r"(?:多少|几)|最高(?:补贴|奖励|资助)|比例|百分之几|how much (?:money|funding|subsidy|reward|"
                          r"support|grant|cash|is (?:the|a|one) (?:subsidy|reward|grant|bonus))|what (?:amount|sum|"
                          r"percentage|percent|rate|share|proportion)|how many (?:yuan|rmb|dollars)|maximum (?:subsidy|"
                          r"grant|amount|reward)|(?:subsidy|reward|grant|bonus) (?:amount|size)", re.I)),
    ("period", re.compile(r"多久|多长时间|几年|几个月|几天|期限|什么时候|何时|截止|到什么时候|哪一?年|how long|deadline|"
                          r"until when|by when|what year|\bwhen (?:is|are|will|does|do|was|did|can|should)\b", re.I)),
    ("count", re.compile(r"多少(?:家|个|项|所|座|批|户|名|人|件|场)|(?<!哪)几(?:家|个|项|所|座|批|户|名)|how many", re.I)),
)


_PERIOD_ASKED = dict(_ASKED)["period"]
VALIDITY = next(d for d in DETAILS if d.kind == "validity")


@dataclass(frozen=True)
class FigureKind:
    """A figure question: `name` is "amount", "area", "period", "count", or "any" when the question
    asks for a quantity of no particular kind ("多少?")."""

    name: str

    def stated(self, text: str) -> bool:
        """Whether `text` states a figure of this kind (years count only for a period)."""
        # Case kept: digits inside a name ("5G") are no figure, and that test reads the capital.
        plain = folded(strip_markers(text))
        if self.name == "period":
            return bool(_UNITS["period"].search(plain))
        if not figures(plain):
            return False
        if self.name in _UNITS:
            return bool(_UNITS[self.name].search(plain))
        if self.name == "count":
            # A number that is not an amount, an area or a period: what is left once those are cut out.
            rest = plain
            for unit in _UNITS.values():
                rest = unit.sub(" ", rest)
            return bool(figures(rest))
        return True


def asked_figure(question: str) -> FigureKind | None:
    """The figure a question asks for, or None when it asks for none."""
    if not QUANTITY_QUESTION.search(question) and not _PERIOD_ASKED.search(question):
        return None
    # Until when a measure applies is its document's validity, shown with every citation, not a figure
    # its text must state.
    if asked_detail(folded(question)) is VALIDITY:
        return None
    return next((FigureKind(name) for name, pattern in _ASKED if pattern.search(question)), FigureKind("any"))
