"""Claim checks of the verifier: a sentence may report the measure, not add to it.

A sentence fails when it
  - speaks as the government or the enterprise (first person: "We shall…", "我们可以…"): the answer
    speaks about the policy;
  - takes a stance the cited measure does not: an obligation, a condition, a completed fact, a cost or
    payment, a frequency or an absolute ("must provide", "only … can", "has already issued", "free of
    charge", "every month", "guarantees"), each licensed only by words of its kind in the measure;
  - names an organisation (a capitalised name ending in Bureau, Commission, Court…; a Chinese name ending
    in 局, 委员会, 法院…) that the cited measure, its departments and its document do not name;
  - is mostly words of its own: more than NEW_WORD_SHARE of its words (English) or character pairs
    (Chinese) found neither in the cited measure, its headings nor the question.

The voice and stance rules are the one definition of them: the evaluation's judge
(evaluation/assertions.py) reads them from here, so the product drops what the judge would reject. The
rest differs: names and new words are read as surface forms (unstemmed words, character pairs), where the
judge reads stems, glossary synonyms and embeddings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from ..corpus.clean import CJK, normalize_for_index
from ..corpus.gazetteer import without_place
from ..retrieval.tokenize import tokenize
from . import facts

# First person, as the plan or the enterprise would write it (the judge reads the same, evaluation/assertions.py).
FIRST_PERSON = re.compile(r"(?<![A-Za-z])(?:[Ww]e|[Oo]urs?|us|[Ww]e'(?:ll|re|ve))(?![A-Za-z'])"
                          r"|我们|我司|我公司|本公司|咱们|我方|我区|我市")
# Stances a sentence may add. Each: the claim's pattern, and what in the measure (in either language)
# licenses it. Obligations are judged apart from the plan's own "We shall" (its voice, not a duty).
STANCES: dict[str, tuple[str, str]] = {
    "obligation": (
        r"\bmust\b|\brequired\b|\brequires?\b|\bmandatory\b|\bcompulsory\b|\bobliged\b|\bhave to\b|\bhas to\b"
        r"|\bneeds? to\b|\bshould\b|必须|务必|(?<![无毋必])须|需要提供|需提交|需要提交|强制|应当|应该",
        r"\bmust\b|\brequired?\b|\bmandatory\b|\bcompulsory\b|\bobligat|(?<!we )\bshall not\b|\bmay not\b|\bshould\b"
        r"|必须|须|应当|强制|不得|原则上应"),
    "condition": (
        r"\bonly\b|\bbefore (?:they|it|you|he|she|the \w+) can\b|\bto (?:qualify|count as)\b|\bunless\b"
        r"|才能|方可|只有|只能|须先|前提",
        r"\bonly\b|\bqualified\b|\beligible\b|\bmeet the conditions\b|\bwho meet\b|\bunless\b|\bprovided that\b"
        r"|符合条件|条件|方可|才能|只有|只能|前提"),
    "completed": (
        r"\balready\b|\bha(?:s|ve) (?:been )?(?:issued|launched|implemented|completed|introduced|built|raised)\b"
        r"|已经|已全面|已(?:发行|建成|实行|实现|开通|推出|完成)",
        r"\balready\b|\bhas been\b|\bhave been\b|已经|已"),
    "cost": (
        r"\bfree\b(?! trade)|\bfree of charge\b|\bat no cost\b|\binterest-free\b|\bzero interest\b|\bno rent\b|\bpays?\b"
        r"|\bpays? (?:for|the full|all)\b|\bpaid by\b|\bcompensat|\bwaived?\b|\bcash\b|\bbonus|\breimburs"
        r"|免费|免租|免息|零利率|免除|垫付|补偿|报销|奖金|注资",
        r"\bfree\b|\bexempt|\bsubsid|\bpay|\baward|\bgrant|\breward|\bcompensat|\brefund|\bfund"
        r"|免费|免除|免税|减免|补贴|奖励|资助|补助|贴息|兑付|补偿|退税|垫付|注资|入股|先用后付"),
    "frequency": (
        r"\bevery (?:day|week|month|quarter|year)\b|\b(?:daily|weekly|monthly|quarterly|annually|annual)\b"
        r"|\bwithin (?:a|an|one|two|three|\d+) (?:hours?|days?|weeks?|months?|working days?)\b|\bon the same day\b"
        r"|每天|每日|每周|每月|每季度|每年|当天|当日|(?:小时|工作日|天|日|周)内",
        r"\bevery (?:day|week|month|quarter|year)\b|\bannual|\beach year\b|\ba year\b|\bper year\b|\bwithin\b"
        r"|每天|每日|每周|每月|每季度|每年|年度|日内|天内|小时内|工作日"),
    "absolute": (
        r"\bguarantee[sd]?\b|\balways\b|\bnever\b|\bno exceptions?\b|\bwithout any\b|\bat all\b|\bevery (?:permit|problem|data)"
        r"|保证|一律|永远|任何|统一下调|统一由",
        r"\bguarantee|\bensure|\balways\b|\bnever\b|\ball\b|保证|确保|担保|保障|一律|全部|任何|均|统一"),
}
STANCE_CLAIM = {k: re.compile(c, re.I) for k, (c, _) in STANCES.items()}
STANCE_MEASURE = {k: re.compile(m, re.I) for k, (_, m) in STANCES.items()}
# "We shall" in the plan's English is its voice; "shall be exempted" states a rule.
PLAN_SHALL = re.compile(r"\b(?:we|it|they|and|which|parks?|district|government) shall\b", re.I)

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


def stances(sentence: str, measure_raw: str) -> list[tuple[str, str]]:
    """(kind, the words) of each stance the sentence takes that the measure, as written, does not."""
    plain_measure = PLAN_SHALL.sub(" ", measure_raw)
    out = []
    for kind, pattern in STANCE_CLAIM.items():
        m = pattern.search(sentence)
        if m and not STANCE_MEASURE[kind].search(plain_measure):
            out.append((kind, m.group(0)))
    return out


def problem(sentence: str, evidence: ClaimEvidence, question: str = "", same_language: bool = True) -> str:
    """Why the sentence says what its evidence does not, or "" when it reports it. Across languages only
    the voice and duties are read: names and words cannot be compared."""
    bare = re.sub(r"\[\d{1,2}(?:\s*[,，、]\s*\d{1,2})*\]", "", sentence).strip()
    m = FIRST_PERSON.search(bare)
    if m:
        return f"speaks as the government or the enterprise ('{m.group(0)}')"
    added = stances(bare, evidence.raw)
    if added:
        kind, said = added[0]
        return f"states a{'n' if kind[0] in 'aeiou' else ''} {kind} ('{said}') the measure does not"
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


# Words that frame an answer about any measure: a sentence made only of these and the question's own
# words says nothing ("Small businesses in Jing'an can get financing through the following measures.").
_FRAME = """
plan plans measure measures policy policies programme program district districts city government enterprise
enterprises company companies firm firms business businesses support supports supported supporting promote
promotes encourage encourages provide provides provided offer offers offered help helps get gets obtain receive
available following below listed several various many some number range series kind kinds type types way ways
means option options form forms include includes including relevant related main specific certain different
measure aspect aspects area areas field fields mainly through apply applies applying access enjoy benefit benefits
方案 计划 措施 政策 规定 办法 企业 公司 支持 推动 鼓励 提供 帮助 获得 享受 申请 通过 以下 如下 下列 主要 包括 具体 相关
有关 多种 多项 一系列 方式 途径 方面 领域 各类 多个 若干 不同 可 可以 能够 能 将 会 区 市 政府 享有 得到 给予
"""
# A question answered yes or no: confirming it is a fact, even in the question's own words.
_YES_NO_QUESTION = re.compile(r"(?:^|[.?!。？！]\s*)(?:is|are|does|do|can|could|will|would|has|have|may|should)\b"
                              r"|有没有|有无|是否|能否|能不能|会不会|可不可以|可否|[吗嘛][？?]?\s*$", re.I)
_LEAD_IN = re.compile(r"[:：]\s*$")


@lru_cache(maxsize=1)
def _frame_tokens() -> frozenset[str]:
    return frozenset(tokenize(" ".join(_FRAME.split())))


def says_nothing(sentence: str, evidence: list[ClaimEvidence], question: str) -> bool:
    """True when the sentence carries no fact from its measures beyond the question's own words: each
    of its content words is the question's, a framing word or a place, and it states no figure the
    question does not. A lead-in to a list that is not there ("… the following measures:") says nothing
    either. To a yes-or-no question, confirming it in its own words says something."""
    bare = re.sub(r"\[\d{1,2}(?:\s*[,，、]\s*\d{1,2})*\]", "", sentence).strip()
    if _LEAD_IN.search(bare.rstrip(".。")):
        return True
    if _YES_NO_QUESTION.search(question):
        return False  # to a yes-or-no question, saying the measure does what was asked is the answer
    text = normalize_for_index(bare)
    asked = normalize_for_index(question)
    if facts.numbers(text) - facts.numbers(asked):
        return False  # a figure is a fact (whether it is the measure's is the number check's to say)
    places = {t for e in evidence for p in e.places for t in tokenize(normalize_for_index(p))}
    own = set(tokenize(text)) - set(tokenize(asked)) - _frame_tokens() - places
    measured = {t for e in evidence for t in tokenize(e.text)}
    return not own & measured
