"""The user's language, and follow-up questions made standalone."""

from __future__ import annotations

import re

from ..corpus.clean import has_cjk, to_simplified
from ..corpus.gazetteer import LibraryPlaces, load_gazetteer


def detect_language(text: str) -> str:
    """'zh' when the question has Chinese characters (simplified or traditional), else 'en'."""
    return "zh" if has_cjk(text) else "en"


# Words that point back at the conversation ("it", "that one", 它, 呢): a question using them leans on
# the last turn for its topic even when it is longer. "there" and "that" are so common in full
# questions ("is there…", "firms that…") that they count only in a short one.
_BACK_EN = re.compile(
    r"^(?:and|also|but|so|ok(?:ay)?|what about|how about|what if|same for|and for|and in|then)\b|\b(?:it|its|"
    r"they|them|their|those|these|the same|similar|ones?(?!-))\b", re.I)
_BACK_EN_SHORT = re.compile(r"\b(?:this|that|there)\b", re.I)
_BACK_ZH = re.compile(r"^(?:那|那么|换成|换到|同样)|呢(?:[\s，,。？?！!]|$)|(?:这个|那个|这些|那些|它|他们|该项|上述|"
                      r"同样|类似|一样)|[又也](?:有|是|会|能|可以|要)")
# A question that names a place has a target of its own and stands alone unless it points back;
# one that does not, and is this short, has no topic of its own ("还有其他支持吗", "应用场景要做到多少个？");
# up to the long length a question pointing back is a follow-up; beyond it, it stands alone.
_SHORT_ZH, _LONG_ZH = 12, 30
_SHORT_EN, _MID_EN, _LONG_EN = 4, 10, 14
_PUNCT = re.compile(r"[\s，,。？?！!、：:；;]")


def is_followup(question: str, places: LibraryPlaces | None = None) -> bool:
    """Whether a question leans on the conversation for its topic (`places`: the library's, whose
    names give a question a target of its own; without it, every place of the gazetteer)."""
    q = to_simplified(question.strip())
    words = _library_or_gazetteer(places).words()
    bare = words.sub(" ", q) if words else q
    named = bare != q
    if has_cjk(q):
        chars, rest = len(_PUNCT.sub("", q)), len(_PUNCT.sub("", bare))
        if chars <= _LONG_ZH and _BACK_ZH.search(q):
            return True
        return rest <= 3 if named else chars <= _SHORT_ZH
    n, rest = len(q.split()), len(bare.split())
    if n <= _LONG_EN and _BACK_EN.search(q) or n <= _MID_EN and _BACK_EN_SHORT.search(q):
        return True
    return rest <= 1 if named else n <= _SHORT_EN


def standalone_query(question: str, history: list[tuple[str, str]], places: LibraryPlaces | None = None) -> str:
    """A follow-up plus the topic of the last question, dropping the old place if a new one is named
    (`places`: the library's; without it, every place of the gazetteer).

    Example:
        >>> standalone_query("And what about Xuhui?", [("How does Jing'an protect IP?", "...")])
        "And what about Xuhui? (How does protect IP?)"
    """
    places = _library_or_gazetteer(places)
    if not history or not is_followup(question, places):
        return question
    # The last question as it was understood: a follow-up of a follow-up keeps the topic of the first.
    previous = standalone_query(history[-1][0], history[:-1], places)
    # A place or a level named now (a district's name, "市里", "the city") replaces the one asked about before.
    if _names_place(question, places):
        previous = re.sub(r"\s{2,}", " ", places.words().sub("", to_simplified(previous))).strip()
    return f"{question.strip()} ({previous})"


def _library_or_gazetteer(places: LibraryPlaces | None) -> LibraryPlaces:
    return places or LibraryPlaces.of((), load_gazetteer())


def _names_place(question: str, places: LibraryPlaces) -> bool:
    """Whether the question names a place or a level (matched in simplified script, as the gazetteer
    spells names)."""
    words = places.words()
    return bool(words and words.search(to_simplified(question)))


def retrieval_query(question: str, query: str, history: list[tuple[str, str]],
                    places: LibraryPlaces | None = None) -> str:
    """What retrieval searches with: the standalone query, and for a follow-up about the last answer
    (no new place or level named) the start of that answer, whose words name its measure better than
    the question does ("who leads it?", "应用场景要做到多少个？"). A refusal's words name none."""
    if query == question or not history or not _CITED.search(history[-1][1]):
        return query
    if _names_place(question, _library_or_gazetteer(places)):
        return query
    said = re.sub(r"\s+", " ", _CITED.sub("", history[-1][1])).strip()[:_ANSWER_CHARS]
    return f"{query} {said}"


_CITED = re.compile(r"\[\d+\]")
_ANSWER_CHARS = 200


def continues_answer(question: str, query: str, history: list[tuple[str, str]]) -> bool:
    """The query took its topic from the last turn, and that turn was answered (its reply cites a
    measure): the follow-up is on that turn's policy topic."""
    return query != question and bool(history) and bool(_CITED.search(history[-1][1]))
