"""How an answer quotes a measure: the frames around a verbatim (or checked, translated) quotation.

One place for both sides of the rule: the answer paths write quotations with these frames
(paths/quote.py for a whole answer, paths/generated.py for a sentence put in place of one that
verification dropped), and the evaluation's judge reads a sentence in such a frame as the measure
speaking (its own voice, its own words), not as the answer's claim.
"""

from __future__ import annotations

import re

_MARKS = r"\[\d{1,2}(?:\s*[,，、]\s*\d{1,2})*\]"


def whole_answer(name: str, text: str, language: str, translated: bool) -> str:
    """The quote path's answer: the measure named, then its sentences quoted, cited [1]."""
    if language == "zh":
        return f"最相关的措施是{name}，{'译文' if translated else '原文'}如下：“{text}”[1]"
    if translated:
        return f'The closest measure is {name}. In translation, it states: "{text}" [1]'
    return f'The closest measure is {name}. It states: "{text}" [1]'


def in_place(text: str, n: int, language: str, translated: bool) -> str:
    """One measure sentence quoted inside a generated answer, cited [n], marked as a quotation; its own
    full stop moves outside the quotation, so the quotation ends with its sentence."""
    text = text.strip().rstrip(".。;；!！")
    if language == "zh":
        return f"措施{'译文' if translated else '原文'}：“{text}”[{n}]。"
    if translated:
        return f'In translation, the measure states: "{text}" [{n}].'
    return f'In the measure\'s own words: "{text}" [{n}].'


#: the quote path's opening, naming the measure (it asserts nothing): up to the frame of its quotation
OPENING = re.compile(r"^\s*(?:the closest measure is .{0,300}?\.(?=\s*(?:in translation, )?it states:)"
                     r"|最相关的措施是.{0,300}?[，,](?=(?:译文|原文)如下))\s*", re.I | re.S)
#: the frames right before a quotation, as `whole_answer` and `in_place` write them
FRAMES = (
    re.compile(r"^\s*(?:in translation,\s*)?it states:\s*", re.I),
    re.compile(r"^\s*(?:译文|原文)如下[：:]\s*"),
    re.compile(r"^\s*in translation, the measure states:\s*", re.I),
    re.compile(r"^\s*in the measure's own words:\s*", re.I),
    re.compile(r"^\s*措施(?:译文|原文)[：:]\s*"),
)
#: a quotation with its frame (and the quote path's opening), to be kept whole when an answer is split
FRAMED = re.compile(r"(?:(?:the closest measure is .{0,300}?\.\s*(?=(?:in translation, )?it states:))"
                    r"|最相关的措施是.{0,300}?[，,](?=(?:译文|原文)如下))?"
                    r"(?:(?:in translation,\s*)?it states:|(?:译文|原文)如下[：:]|in translation, the measure states:"
                    r"|in the measure's own words:|措施(?:译文|原文)[：:])\s*"
                    rf"[“\"][^\x00]{{1,2000}}?[”\"](?=\s*{_MARKS})", re.I | re.S)
