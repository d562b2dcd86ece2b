"""Sentence splitting, the two ways the product needs it.

`measure_sentences` splits policy text (a measure) at sentence ends followed by a new sentence;
`reply_sentences` splits a model's reply so that citation markers after a full stop stay with their
sentence and "2.5", "No. 5", "e.g. data" do not end one.
"""

from __future__ import annotations

import re

from .clean import has_cjk

_SENTENCE_EN = re.compile(r"(?<=[.;!?])\s+(?=[A-Z“\"(])")
_SENTENCE_ZH = re.compile(r"(?<=[。；！？])")
_SENTENCE_END = re.compile(r"[.!?。！？]")


def measure_sentences(text: str) -> list[str]:
    pattern = _SENTENCE_ZH if has_cjk(text) else _SENTENCE_EN
    return [s.strip() for s in pattern.split(text) if s.strip()]


def reply_sentences(text: str) -> list[str]:
    """Split an answer into sentences; markers after the full stop stay with their sentence."""
    out: list[str] = []
    buf = ""
    i = 0
    while i < len(text):
        c = text[i]
        buf += c
        i += 1
        if _SENTENCE_END.match(c) and not (c == "." and _continues(text, i)):
            # absorb trailing markers and closing punctuation: "... done. [1]" / "...完成。[1][2]"
            m = re.match(r"((?:\s*\[\d{1,2}(?:\s*[,，、]\s*\d{1,2})*\])+[.。]?)", text[i:])
            if m:
                buf += m.group(1)
                i += len(m.group(1))
            if buf.strip():
                out.append(buf.strip())
            buf = ""
        elif c == "\n" and buf.strip():
            out.append(buf.strip())
            buf = ""
    if buf.strip():
        out.append(buf.strip())
    return out


def _continues(text: str, i: int) -> bool:
    """A full stop followed by a digit or a lower-case word is inside a sentence: "2.5", "No. 5",
    "e.g. data products"."""
    m = re.match(r"\s*(\S)", text[i:])
    return bool(m) and (m.group(1).isdigit() or "a" <= m.group(1) <= "z")
