"""Claim checks of the verifier: a sentence may report the measure, not add to it.

A sentence fails when it
  - speaks as the government or the enterprise (first person: "We shall…", "我们可以…"): the answer
    speaks about the policy;
  - states a duty or a condition ("must", "required", "必须", "需要提供", "才能") with no such word in the
    evidence it cites;
  - names an organisation (a capitalised name ending in Bureau, Commission, Court…; a Chinese name ending
    in 局, 委员会, 法院…) that the cited measure, its departments and its document do not name;
  - is mostly words of its own: more than NEW_WORD_SHARE of its words (English) or character pairs
    (Chinese) found neither in the cited measure, its headings nor the question.

This is the product's check, kept apart from the evaluation's judge (evaluation/assertions.py): it reads
surface forms (unstemmed words, character pairs) where the judge reads stems, glossary synonyms and
embeddings, and its word lists are its own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..corpus.clean import CJK, normalize_for_index
from ..corpus.gazetteer import without_place

# First person, as the plan or the enterprise would write it.
FIRST_PERSON = re.compile(r"(?<![A-Za-z])(?:[Ww]e|[Oo]ur|us)(?![A-Za-z'])|我们|我司|我公司|本公司|咱们")
# Duties and conditions, and what in the evidence may carry one over.
DUTY = re.compile(r"\bmust\b|\brequired\b|\bobliged\b|\bmandatory\b|\bcompulsory\b|\bhave to\b|\bneeds? to\b|\bonly\b"
                  r"|必须|需要提供|需提供|须提交|需要提交|才能|方可|只有|强制", re.I)
DUTY_IN_EVIDENCE = re.compile(r"\bmust\b|\brequire|\bmandatory\b|\bcompulsory\b|\bobligat|\bonly\b|\bnot exceed\b"
                              r"|必须|须|应当|不得|强制|方可|才能|只有|要求", re.I)
# Organisation names: a capitalised run ending in a head noun; Chinese names ending in a body suffix.
_ORG_EN = re.compile(r"(?:[A-Z][\w'’-]*\s+(?:(?:of|and|for|the)\s+)*){1,6}(?:Bureau|Commission|Court|Committee|Ministry|"
                     r"Administration|Government|Council|Agency|Exchange|Academy)\b")
_ORG_ZH = re.compile(f"[{CJK}]{{2,10}}?(?:局|委员会|法院|交易所|政府|总部)")
# More than this share of a sentence's own words (or Chinese character pairs) new to its measure, the
# headings and the question is a sentence about something else.
NEW_WORD_SHARE = 0.6
_WORD = re.compile(r"[a-z][a-z'-]+")
_FUNCTION_WORDS = frozenset("""
a an the and or of to in on for with by at as from into is are be been was were will shall can may this that these
those it its their them they which who whose what when where how also more other such than so not no any all each
through under within via about both well including include includes support supports supported promote promotes
encourage encouraged provide provides help helps plan district measure measures policy policies enterprises
enterprise companies company firms firm business businesses according source yes there has have had do does
""".split())


# The plan's own voice, and the enterprise's, turned into speech about the policy; any other first
# person is left for `problem` to reject.
_ABOUT_POLICY = [(re.compile(p), r) for p, r in (
    (r"^We (?:shall|will)\b", "The plan will"), (r"(?<=[,;] )we (?:shall|will)\b", "the plan will"),
    (r"(?<=\band )we (?:shall|will)\b", "will"), (r"^We (can|may)\b", r"Enterprises \1"),
    (r"^我们(将|要|会)", r"该方案\1"), (r"^我们(?:公司|企业)?(可以|能够|能|可)", r"企业\1"))]


def about_the_policy(sentence: str) -> str:
    """'We shall promote …' -> 'The plan will promote …'; '我们可以申请…' -> '企业可以申请…'."""
    for pattern, repl in _ABOUT_POLICY:
        sentence = pattern.sub(repl, sentence)
    return sentence


@dataclass(frozen=True)
class ClaimEvidence:
    """What one cited measure lets a sentence say: its text and names, in index form."""

    text: str  # the measure's text, label, departments
    names: str  # document titles, issuer, district
    raw: str  # the measure's text as written, for duty words
    places: tuple[str, ...] = ()  # the Chinese names of its document's place (gazetteer.chinese_names)


def _pairs(text: str) -> set[str]:
    runs = re.findall(f"[{CJK}]+", text)
    return {r[i:i + 2] for r in runs for i in range(len(r) - 1)}


def _words(text: str) -> set[str]:
    return {w.strip("'-") for w in _WORD.findall(text)} - _FUNCTION_WORDS


def _stemless(word: str) -> str:
    """A crude common root, so "services"/"service" and "supported"/"support" meet."""
    for suffix in ("ations", "ation", "ings", "ing", "ies", "ied", "ed", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            return word[: -len(suffix)]
    return word


def new_word_share(sentence: str, evidence: ClaimEvidence, question: str = "") -> float:
    """Share of the sentence's words (English) or character pairs (Chinese) that its evidence, the
    evidence's names and the question do not have."""
    text = normalize_for_index(sentence)
    pool = evidence.text + " " + evidence.names + " " + normalize_for_index(question)
    pairs = _pairs(text)
    words = _words(re.sub(f"[{CJK}]+", " ", text))
    if len(pairs) >= len(words):
        own = _pairs(pool)
        return len(pairs - own) / len(pairs) if pairs else 0.0
    roots = {_stemless(w) for w in _words(pool)}
    new = [w for w in words if _stemless(w) not in roots and w not in pool]
    return len(new) / len(words) if words else 0.0


def problem(sentence: str, evidence: ClaimEvidence, question: str = "", same_language: bool = True) -> str:
    """Why the sentence says what its evidence does not, or "" when it reports it. Across languages only
    the voice and duties are read: names and words cannot be compared."""
    bare = re.sub(r"\[\d{1,2}(?:\s*[,，、]\s*\d{1,2})*\]", "", sentence).strip()
    m = FIRST_PERSON.search(bare)
    if m:
        return f"speaks as the government or the enterprise ('{m.group(0)}')"
    m = DUTY.search(bare)
    if m and not DUTY_IN_EVIDENCE.search(evidence.raw):
        return f"states a duty or condition ('{m.group(0)}') the measure does not"
    if not same_language:
        return ""
    pool = evidence.text + " " + evidence.names
    for name in _ORG_EN.findall(bare):
        if normalize_for_index(name.strip()) not in pool:
            return f"names '{name.strip()}', which the measure does not"
    for name in _ORG_ZH.findall(normalize_for_index(bare)):
        core = without_place(name, evidence.places)
        if len(core) >= 2 and core not in pool:
            return f"names '{name}', which the measure does not"
    share = new_word_share(bare, evidence, question)
    if share > NEW_WORD_SHARE:
        return f"mostly says what the measure does not ({share:.0%} of it new)"
    return ""
