"""The user's language, and follow-up questions made standalone."""

from __future__ import annotations

import re

from ..corpus.clean import has_cjk, to_simplified
from ..corpus.gazetteer import LibraryPlaces, load_gazetteer


def detect_language(text: str) -> str:
    """'zh' when the question has Chinese characters (simplified or traditional), else 'en'."""
    return "zh" if has_cjk(text) else "en"


_FOLLOW_EN = re.compile(
    r"^(?:and|also|but|so|what about|how about|what if|same for|and for|and in|then)\b|\b(?:it|its|they|them|their|"
    r"this|that|those|these|there|the same)\b", re.I)
_FOLLOW_ZH = re.compile(r"^(?:那|那么|还有|另外|并且|而且|同样|再问)|呢[？?]?$|(?:这个|那个|这些|那些|它|他们|该项|上述|同样)")


def is_followup(question: str) -> bool:
    q = question.strip()
    if has_cjk(q):
        return bool(_FOLLOW_ZH.search(to_simplified(q))) or len(q) <= 8
    words = q.split()
    return len(words) <= 4 or (len(words) <= 10 and bool(_FOLLOW_EN.search(q)))


def standalone_query(question: str, history: list[tuple[str, str]], places: LibraryPlaces | None = None) -> str:
    """A follow-up plus the topic of the last question, dropping the old place if a new one is named
    (`places`: the library's; without it, every place of the gazetteer).

    Example:
        >>> standalone_query("And what about Xuhui?", [("How does Jing'an protect IP?", "...")])
        "And what about Xuhui? (How does protect IP?)"
    """
    if not history or not is_followup(question):
        return question
    previous = history[-1][0]
    words = (places or LibraryPlaces.of((), load_gazetteer())).words()
    if words and words.search(question):
        previous = re.sub(r"\s{2,}", " ", words.sub("", previous)).strip()
    return f"{question.strip()} ({previous})"
