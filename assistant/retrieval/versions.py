"""The version a question is about first: the one in force, unless it asks about the earlier one.

A newer version of a document repeats most of the old one's words, so retrieval scores the two alike
and either may come first. Unless the question asks about the earlier version (its year or number,
or words such as "old version", "still valid", 原来的政策, 是否有效), the hits of a superseded document
are left out when the document replacing it has hits: answers cite the version in force. When it does
ask, both stay and the newer version's hits move below the earlier one's first hit; an answer from the
earlier version is flagged as superseded.
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
    """The hits of the version the question is about: the version in force alone, or, asked about the
    earlier one, both with the earlier one's first."""
    docs = {h.document.doc_id: h.document for h in hits}
    held_for: dict[str, str] = {}  # doc_id whose hits wait -> doc_id whose first hit they wait for
    for new in docs.values():
        old = docs.get(new.supersedes or "")
        if old is not None:
            first, second = (old, new) if asks_about_earlier(query, old, new) else (new, old)
            held_for[second.doc_id] = first.doc_id
    # Not asked about, a superseded version's hits go: the rerank after retrieval would otherwise put
    # its words, the same as its successor's, back in the lead.
    dropped = {old for old, first in held_for.items() if docs[first].supersedes == old}
    held: dict[str, list[Hit]] = {}
    seen: set[str] = set()
    out: list[Hit] = []
    for h in hits:
        if h.document.doc_id in dropped:
            continue
        wait_for = held_for.get(h.document.doc_id)
        if wait_for is not None and wait_for not in seen:
            held.setdefault(wait_for, []).append(h)
            continue
        out.append(h)
        seen.add(h.document.doc_id)
        out.extend(held.pop(h.document.doc_id, []))
    if [h.measure.measure_id for h in out] == [h.measure.measure_id for h in hits]:
        return hits
    return [replace(h, rank=i) for i, h in enumerate(out, 1)]
