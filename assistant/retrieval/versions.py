"""The version in force first: a measure of a superseded document never leads its successor's.

A newer version of a document repeats most of the old one's words, so retrieval scores the two alike
and either may come first. Unless the question asks about the earlier version (its year or number,
or words such as "previous", "still valid", "原", "仍然有效"), every hit of a superseded document is
moved below the first hit of the document replacing it; the old version stays among the hits, for
"is this still valid?" questions and so that an answer from it is flagged.
"""

from __future__ import annotations

import re
from dataclasses import replace

from ..corpus.clean import to_simplified
from ..types import Document, Hit

_ASKS_EARLIER = re.compile(
    r"\b(?:old|older|previous|earlier|former|original|superseded|replaced|expired|last) (?:version|edition|"
    r"policy|policies|measures?|rules|document|notice|plan)\b|\bstill (?:valid|in force|appl(?:y|ies)|effective)\b|"
    r"\b(?:has|have|was|were) (?:it|they|this|these)? ?(?:been )?(?:replaced|superseded|expired)\b|"
    r"旧版|老版|原(?:政策|办法|措施|文件|版本|规定)|(?:以前|之前|原来)的(?:政策|办法|措施|文件|规定|版本)|被取代|废止|过期|失效|"
    r"(?:还|仍|仍然|是否|是不是)(?:有效|适用|能用|在执行)", re.I)
_YEAR = re.compile(r"(?<!\d)(20\d\d)(?!\d)")


def asks_about_earlier(query: str, old: Document, new: Document) -> bool:
    """Whether the question is about the earlier version rather than the one in force."""
    text = to_simplified(query)
    if _ASKS_EARLIER.search(text):
        return True
    years = set(_YEAR.findall(text))
    old_year = str(old.issued.year) if old.issued else None
    new_year = str(new.issued.year) if new.issued else None
    if old_year and old_year in years and new_year not in years:
        return True
    return bool(old.doc_number and old.doc_number.replace(" ", "") in text.replace(" ", ""))


def in_force_first(hits: list[Hit], query: str) -> list[Hit]:
    """The hits with each superseded document's measures after its successor's first one."""
    successor_of = {h.document.supersedes: h.document for h in hits if h.document.supersedes}
    held: dict[str, list[Hit]] = {}
    seen: set[str] = set()
    out: list[Hit] = []
    for h in hits:
        newer = successor_of.get(h.document.doc_id)
        if newer is not None and newer.doc_id not in seen and not asks_about_earlier(query, h.document, newer):
            held.setdefault(newer.doc_id, []).append(h)
            continue
        out.append(h)
        seen.add(h.document.doc_id)
        out.extend(held.pop(h.document.doc_id, []))
    if [h.measure.measure_id for h in out] == [h.measure.measure_id for h in hits]:
        return hits
    return [replace(h, rank=i) for i, h in enumerate(out, 1)]
