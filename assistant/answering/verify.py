"""Post-generation checks: what the user sees is only sentences backed by the measure they cite.

For each sentence of the model's answer:
  1. it must carry at least one [n] marker naming a measure that was shown to the model;
  2. every number in it must be a number of a cited measure (values compared, any notation);
  3. every quoted programme name in it must appear in a cited measure;
  4. it may not add to the measure (claims.py): no first-person voice, duty, organisation or mostly
     new words;
  5. it must carry a fact of its measures beyond the question's own words (claims.says_nothing);
  6. the cited measure must support it (shared content words, or a close embedding).
A marker that fails 2-4 or 6 is moved to another shown measure that passes, if one does; a sentence
that no shown measure backs is dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from ..corpus.clean import CJK, has_cjk, normalize_for_index
from ..corpus.gazetteer import chinese_names
from ..corpus.sentences import reply_sentences as split_sentences
from ..retrieval.tokenize import tokenize
from ..types import Document, Measure
from . import claims, facts

_CJK_CHAR = re.compile(f"[{CJK}]")
# Content-word overlap above this, or embedding similarity above the next, counts as support.
SUPPORT_OVERLAP = 0.34
SUPPORT_COSINE = 0.84
SUPPORT_OVERLAP_STRICT = 0.5
SUPPORT_COSINE_STRICT = 0.88
# ... and then the sentence must be aligned with the measure (see retrieval.sentences), at this floor.
ALIGN_FLOOR = 0.82


EMPTY = "carries no fact beyond the question's words"

_QUOTED_IN_QUESTION = re.compile(r"'([^']{2,200})'|\"([^\"]{2,200})\"|[“「『]([^”」』]{2,200})[”」』]")


def _grams(text: str) -> set[str]:
    """Runs of five words, or of eight Chinese characters, in index form."""
    words = re.findall(r"[a-z0-9]+(?:'[a-z0-9]+)*", text)
    grams = {" ".join(words[i:i + 5]) for i in range(len(words) - 4)}
    for run in re.findall(r"[\u4e00-\u9fff]{8,}", text):
        grams |= {run[i:i + 8] for i in range(len(run) - 7)}
    return grams


def _squash(text: str) -> str:
    """Letters and digits only, simplified and lower-case: headings compare whatever the spacing."""
    return re.sub(r"[\W_]+", "", normalize_for_index(text))


@dataclass(frozen=True)
class Evidence:
    """One measure as shown to the model under number `n`."""

    n: int
    measure: Measure
    document: Document
    text: str  # what the model saw (may be a selection of the measure's sentences)


@dataclass
class SentenceCheck:
    text: str
    cited: list[int]
    kept: bool
    reason: str = ""
    empty: bool = False  # dropped for carrying no fact beyond the question's words


@dataclass
class Verified:
    sentences: list[SentenceCheck] = field(default_factory=list)

    @property
    def kept(self) -> list[SentenceCheck]:
        return [s for s in self.sentences if s.kept]


def mostly_chinese(text: str) -> bool:
    # One Chinese character weighs about as much as one English word.
    return has_cjk(text) and len(_CJK_CHAR.findall(text)) * 4 > len(re.findall("[A-Za-z]", text))


class Verifier:
    """Checks answer sentences against the evidence. `embed` (optional) maps texts to unit vectors for
    the similarity check; without it support is judged on shared words only. `aligned(sentence, mids,
    floor)` (optional, a SentenceTable's) must also agree where only similarity supports a sentence:
    near the whole measure is not enough when another measure holds the sentence's closest match."""

    def __init__(self, evidence: list[Evidence], embed=None, question: str = "", aligned=None,
                 claim_checks: bool = True):
        self.evidence = {e.n: e for e in evidence}
        self._question = question
        self._claims = {e.n: claims.ClaimEvidence(
            text=normalize_for_index(" ".join([e.measure.text, e.measure.label, *e.measure.departments])),
            names=normalize_for_index(" ".join(filter(None, [e.document.title, e.document.short_title_en,
                                                             e.document.short_title_zh, e.document.issuer,
                                                             e.document.district]))),
            raw=e.measure.text, places=chinese_names(e.document)) for e in evidence} if claim_checks else {}
        # Runs of the question's own words: an answer that repeats them when its measure does not say
        # them is echoing the user (an injected "say that ..."), not reporting the policy.
        self._question_grams = _grams(normalize_for_index(question)) if question else set()
        # Quoted text in a question ("... then say 'access granted'") is checked however short it is.
        self._question_quotes = {q for q in (normalize_for_index("".join(m)) for m in _QUOTED_IN_QUESTION.findall(question))
                                 if len(q) >= 4}
        self._embed = embed
        self._aligned = aligned
        self._allowed_numbers = {e.n: self._numbers_of(e) for e in evidence}
        self._norm_text = {e.n: normalize_for_index(e.measure.text + " " + e.measure.label) for e in evidence}
        self._tokens = {e.n: set(tokenize(self._norm_text[e.n])) for e in evidence}
        self._text_grams = {e.n: _grams(self._norm_text[e.n]) for e in evidence}
        self._vectors: dict[int, np.ndarray] = {}
        self._sentence_vectors: dict[str, np.ndarray] = {}
        # The evidence headings (labels, titles, issuers), longest first: copying one out says nothing.
        self._headings = sorted({_squash(h) for e in evidence for h in (
            e.measure.label, e.measure.title, e.document.title, e.document.short_title_zh, e.document.short_title_en,
            e.document.issuer, e.document.doc_number or "") if h and len(_squash(h)) >= 4}, key=len, reverse=True)

    @staticmethod
    def _numbers_of(e: Evidence) -> set[float]:
        d = e.document
        meta = " ".join(filter(None, [e.measure.text, e.measure.label, " ".join(e.measure.section_path),
                                      d.title, d.doc_number or "", d.issued.isoformat() if d.issued else "",
                                      d.valid_until.isoformat() if d.valid_until else "", d.validity_text or ""]))
        return facts.numbers(meta)

    def _supports(self, n: int, sentence: str, strict: bool = False) -> tuple[bool, float, str]:
        """(supported, strength, reason). `strict` raises the bar, for sentences the model left uncited."""
        e = self.evidence[n]
        extra_numbers = facts.numbers(sentence) - self._allowed_numbers[n]
        if extra_numbers:
            shown = ", ".join(f"{x:g}" for x in sorted(extra_numbers)[:3])
            return False, 0.0, f"number(s) {shown} not in measure {e.measure.measure_id}"
        for name in facts.quoted_names(sentence):
            if name not in self._norm_text[n]:
                return False, 0.0, f"programme '{name}' not in measure {e.measure.measure_id}"
        bare = facts.strip_markers(sentence)
        plain = normalize_for_index(bare)
        if any(q in plain and q not in self._norm_text[n] for q in self._question_quotes):
            return False, 0.0, f"repeats text quoted in the question that measure {e.measure.measure_id} does not contain"
        echoed = _grams(plain) & self._question_grams
        if echoed and not echoed <= self._text_grams[n]:
            return False, 0.0, f"repeats words of the question that measure {e.measure.measure_id} does not contain"
        if n in self._claims:
            same = mostly_chinese(bare) == (e.document.language == "zh")
            why = claims.problem(bare, self._claims[n], self._question, same_language=same)
            if why:
                return False, 0.0, f"{why} ({e.measure.measure_id})"
        bar_overlap = SUPPORT_OVERLAP_STRICT if strict else SUPPORT_OVERLAP
        bar_cosine = SUPPORT_COSINE_STRICT if strict else SUPPORT_COSINE
        words = set(tokenize(plain))
        overlap = len(words & self._tokens[n]) / len(words) if words else 0.0
        if overlap >= bar_overlap:
            return True, 1.0 + overlap, ""
        if self._embed is not None:
            if n not in self._vectors:
                self._vectors[n] = self._embed([e.measure.text])[0]
            if bare not in self._sentence_vectors:  # asked once per evidence measure when reattributing
                self._sentence_vectors[bare] = self._embed([bare])[0]
            sim = float(self._sentence_vectors[bare] @ self._vectors[n])
            if sim >= bar_cosine:
                if self._aligned is None or self._aligned(bare, [e.measure.measure_id], floor=ALIGN_FLOOR):
                    return True, sim, ""
                return False, 0.0, f"closer to another measure than to {e.measure.measure_id} (similarity {sim:.2f})"
            return False, 0.0, f"not supported by measure {e.measure.measure_id} (overlap {overlap:.2f}, similarity {sim:.2f})"
        return False, 0.0, f"not supported by measure {e.measure.measure_id} (overlap {overlap:.2f})"

    def _best_other(self, sentence: str, exclude: list[int], strict: bool) -> int | None:
        scored = []
        for n in self.evidence:
            if n in exclude:
                continue
            ok, strength, _ = self._supports(n, sentence, strict)
            if ok:
                scored.append((strength, -n, n))
        return max(scored)[2] if scored else None

    def check(self, answer: str) -> Verified:
        result = Verified()
        for sentence in split_sentences(answer):
            if self._claims:
                sentence = claims.about_the_policy(sentence)
            cited = list(dict.fromkeys(facts.markers(sentence)))
            body = facts.strip_markers(sentence)
            if len(body) < 2 or not re.search(r"\w", body):
                continue  # a stray marker or punctuation
            if self._only_headings(body):
                result.sentences.append(SentenceCheck(sentence, cited, False, "only restates a heading"))
                continue
            own = [self._claims[n] for n in cited if n in self._claims] or list(self._claims.values())
            if self._claims and self._question and claims.says_nothing(body, own, self._question):
                result.sentences.append(SentenceCheck(sentence, cited, False, EMPTY, empty=True))
                continue
            if not cited:
                # Attribute an uncited sentence only when one shown measure clearly backs it.
                best = self._best_other(sentence, [], strict=True)
                if best is None:
                    result.sentences.append(SentenceCheck(sentence, [], False, "no citation"))
                else:
                    result.sentences.append(SentenceCheck(self._remark(body, [best]), [best], True, "attributed"))
                continue
            valid = [n for n in cited if n in self.evidence]
            if not valid:
                result.sentences.append(SentenceCheck(sentence, cited, False, f"cites {cited}, not shown"))
                continue
            good = []
            reason = ""
            for n in valid:
                ok, _, why = self._supports(n, sentence)
                if ok:
                    good.append(n)
                else:
                    reason = why
            if not good:  # maybe the model cited the wrong number: look for a shown measure that backs it
                best = self._best_other(sentence, valid, strict=False)
                good = [best] if best is not None else []
            if good:
                result.sentences.append(SentenceCheck(self._remark(body, good), good, True))
            else:
                result.sentences.append(SentenceCheck(sentence, valid, False, reason))
        return result

    def _only_headings(self, body: str) -> bool:
        """True when, the evidence headings taken out, fewer than six letters or characters are left
        ("徐汇区…方案 第4项 “引进来”“走出去”服务中的“徐汇”" names a measure, it states nothing)."""
        rest = _squash(body)
        for heading in self._headings:
            rest = rest.replace(heading, "")
        return len(rest) < 6

    @staticmethod
    def _remark(body: str, cited: list[int]) -> str:
        """Put the (possibly corrected) markers at the end of the sentence, before its full stop."""
        body = body.rstrip()
        end = ""
        if body and body[-1] in ".。!！?？":
            body, end = body[:-1].rstrip(), body[-1]
        elif body:
            end = "."
        if end and mostly_chinese(body):  # a Chinese sentence ends the Chinese way, whatever the model typed
            end = {".": "。", "!": "！", "?": "？"}.get(end, end)
        return f"{body}{''.join(f'[{n}]' for n in cited)}{end}"
