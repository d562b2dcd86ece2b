"""The evidence gate: does the corpus cover this question, judged from retrieval signals alone?

A question is refused before any generation when it carries instructions aimed at the assistant,
names a place or year the policies do not cover, asks for an amount no retrieved measure states,
or when retrieval finds nothing close enough. Thresholds are set from the evaluation set
(`jxa eval --calibrate` prints the sweep they were chosen from).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

from ..corpus.clean import normalize_for_index, to_simplified
from ..retrieval.hybrid import QueryPlan
from ..types import Hit

# Chosen with `jxa eval --calibrate` (the most rejection within a small false-refusal budget; the
# figures are in docs/decisions.md).
MIN_DENSE = 0.79  # best cosine of a hit, plain or cross-lingual (multilingual-e5-small, prefixed)
MIN_DENSE_ALONE = 0.79  # ... when BM25 does not agree on any of the top hits
MIN_COVERAGE_ANY = 0.3  # ... below which even agreeing retrievers are matching a stray word ("上海")
MIN_COVERAGE = 0.4  # share of the question's content words known to the corpus

INJECTION = re.compile(
    r"ignore (?:all |any |the )?(?:previous|prior|above|earlier|your)|disregard (?:all |the |your )?"
    r"(?:previous|prior|above|rules|instructions)|system prompt|you are now|pretend (?:that|to be|you)|"
    r"act as|jailbreak|developer mode|reveal (?:your|the) (?:rules|instructions|prompt)|new instructions|"
    r"忽略(?:之前|以上|上面|前面|所有)|无视(?:之前|以上|规则)|系统提示|提示词|扮演|假装|越狱|开发者模式|"
    r"现在你是|不要遵守|忘记(?:之前|你的)|"
    r"forget (?:everything|all|your|what you)|new (?:task|instruction)|</?(?:context|system|evidence|instructions?)>|\boverride\b|let'?s play a game|from now on|"
    r"(?:print|repeat|show|output) (?:your|the) (?:system |hidden )?(?:prompt|instructions|rules)|"
    r"(?:respond|reply|answer) only with|say exactly|"
    r"忘记.{0,6}(?:设定|规则|指令|提示|说明)|在(?:回答|答案)的?(?:末尾|开头|最后|结尾)(?:加上|写上|附上)|从现在(?:开始|起)|"
    r"新(?:的)?任务|(?:输出|重复|显示|告诉我)你的(?:指令|提示|规则|设定)|不要理会|请?无视",
    re.I,
)

# Requests that are plainly not about enterprise policy, however close their words land in the corpus
# ("buy", "week", "company" all occur in it): code, sums, weather, recipes, stock tips, jokes and verse.
OFF_TOPIC = re.compile(
    r"\bwrite (?:me )?(?:a|an|some) (?:code|program|function|script|poem|"
    r"story|joke|song|essay)|(?:quick|bubble|merge) ?sort|\d+\s*(?:times|plus|minus|divided by|multiplied by|[x×*+])"
    r"\s*\d+\s*(?:\?|$|=)|\bweather\b|\brecipe\b|\bhow (?:do|to) (?:i |you )?(?:cook|bake)\b|"
    r"which (?:stocks?|shares?|funds?|crypto\w*) (?:should|to) |\btell me a joke\b|"
    r"写(?:一个|一段|个)?(?:代码|程序|函数|脚本)|排序算法|快速排序|冒泡排序|\d+\s*(?:乘以?|加上?|减去?|除以)\s*\d+|"
    r"天气|菜谱|食谱|怎么做(?:菜|饭|蛋糕)|(?:买|推荐)(?:哪只|哪个|什么)(?:股票|基金)|讲个笑话|写(?:一首)?诗",
    re.I,
)

AMOUNT_QUESTION = re.compile(
    r"how much|how many (?:yuan|rmb|dollars)|what (?:amount|percentage|percent|sum)|maximum (?:subsidy|grant|amount)|"
    r"多少钱|多少元|多少万|金额|补贴多少|奖励多少|资助多少|比例是多少|最高(?:补贴|奖励|资助)|百分之几",
    re.I,
)
# A question whose answer is a quantity, date or duration. Answered only with a checked figure: when no
# sentence that survives verification states one (and the measure quoted instead states none), the
# policies do not give it, and the honest answer is a refusal rather than a related measure.
QUANTITY_QUESTION = re.compile(
    AMOUNT_QUESTION.pattern + r"|how many|how long|how big|how large|what (?:rate|share|proportion)|deadline|"
    r"(?:monthly|annual|yearly) rent|credit (?:limit|line)|cap on|多少|多久|多长时间|多大|几[天年个月家项]|"
    r"比例|上限|期限|截止",
    re.I,
)


def asks_for_figure(question: str) -> bool:
    """A question answered only with a figure verification found in the cited measure."""
    return bool(QUANTITY_QUESTION.search(question))


# An amount question ("how much space", "多少家") is answerable when a retrieved measure states some
# quantity; the verifier then checks the number the answer gives is the measure's.
_MONEY = re.compile(r"\d|[一二两三四五六七八九十百千万亿]+(?:个|家|项|亿|万|平方米|倍|成|天|年)|percent|百分之", re.I)
_YEAR = re.compile(r"(?<!\d)(20[0-4]\d)(?!\d)")


# How a Chinese question is put, not what it is about: left out of the coverage share, as English
# stop words already are (the small Chinese corpus lacks everyday words, so they read as unknown).
QUESTION_WORDS_ZH = frozenset("""
有没有 没有 能不能 可不可以 是不是 会不会 要不要 多少 多久 几个 好几 好几个 哪几个 哪个 哪里 这个 那个 这些 那些
现在 目前 今年 一年 每年 想 想要 需要 请问 一下 一家 一次 各种 专门 里 什么样 怎样 怎么办 还有 应该 已经 一直
""".split())


@dataclass(frozen=True)
class GateDecision:
    covered: bool
    reason: str  # "", "injection", "off_topic", "other_place", "other_year", "amount_not_stated", "weak_match"
    signals: dict = field(default_factory=dict)


def signals(plan: QueryPlan, hits: list[Hit], vocab: set[str]) -> dict:
    """Retrieval signals for the gate (also logged and used by calibration)."""
    from ..retrieval.tokenize import tokenize

    # Numbers say nothing about the topic ("what's 17 times 23?" is not a policy question).
    words = [w for w in tokenize(plan.text) if not any(c.isdigit() for c in w) and w not in QUESTION_WORDS_ZH]
    known = [w for w in words if w in vocab]
    top = hits[0] if hits else None
    # The cross-lingual similarity counts too: the question's own words rank a measure in the other
    # language low, its glossary-expanded form does not (calibrated: it separates covered from
    # uncovered questions better than the plain cosine alone).
    dense_best = max((max(h.dense_score or 0.0, h.xl_score or 0.0) for h in hits), default=0.0)
    agree = any(h.dense_rank is not None and h.bm25_rank is not None and h.dense_rank <= 5 and h.bm25_rank <= 5
                for h in hits[:3])
    return {
        "dense_best": round(dense_best, 4),
        "top_dense": round(top.dense_score, 4) if top and top.dense_score is not None else None,
        "top_bm25": round(top.bm25_score, 4) if top and top.bm25_score is not None else None,
        "agree": agree,
        "coverage": round(len(known) / len(words), 3) if words else 0.0,
        "words": len(words),
        "boosted": bool(top and top.boosted),
    }


def decide(question: str, plan: QueryPlan, hits: list[Hit], vocab: set[str], *,
           min_dense: float = MIN_DENSE, min_dense_alone: float = MIN_DENSE_ALONE,
           min_coverage: float = MIN_COVERAGE) -> GateDecision:
    s = signals(plan, hits, vocab)
    # Full-width or traditional forms must not slip past the patterns.
    folded = to_simplified(unicodedata.normalize("NFKC", question))
    if INJECTION.search(folded):
        return GateDecision(False, "injection", s)
    if not hits or OFF_TOPIC.search(folded):
        return GateDecision(False, "off_topic", s)
    top_text = normalize_for_index(" ".join(h.measure.text + " " + h.document.title for h in hits[:3]))
    q = plan.text
    # A place no document is about, unless the evidence itself speaks of it.
    if any(not any(w in top_text for w in place.spellings) for place in plan.elsewhere):
        return GateDecision(False, "other_place", s)
    corpus_years = {y for h in hits for y in _YEAR.findall(
        f"{h.document.title} {h.document.issued} {h.document.valid_until} {h.measure.text}")}
    asked_years = set(_YEAR.findall(q))
    if asked_years and not asked_years & corpus_years:
        return GateDecision(False, "other_year", s)
    if s["dense_best"] < min_dense or (not s["agree"] and s["dense_best"] < min_dense_alone):
        return GateDecision(False, "off_topic" if s["coverage"] < min_coverage else "weak_match", s)
    if s["coverage"] < min_coverage and not s["agree"] or s["coverage"] < MIN_COVERAGE_ANY:
        return GateDecision(False, "off_topic", s)
    if AMOUNT_QUESTION.search(question) and not any(_MONEY.search(h.measure.text) for h in hits[:3]):
        return GateDecision(False, "amount_not_stated", s)
    return GateDecision(True, "", s)

