"""The evidence gate: does the corpus cover this question, judged from retrieval signals alone?

A question is refused before any generation when it carries instructions aimed at the assistant,
names a place or year the policies do not cover, asks for an amount no retrieved measure states,
or when retrieval finds nothing close enough. Thresholds are set from the evaluation set
(`jxa eval --calibrate` prints the sweep they were chosen from).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..corpus.clean import folded as fold
from ..corpus.clean import normalize_for_index, to_simplified
from ..retrieval.hybrid import QueryPlan
from ..types import Document, Hit
from .details import asked_detail, states_detail

# Chosen with `jxa eval --calibrate` (the most rejection within a small false-refusal budget; the
# figures are in docs/decisions.md).
MIN_DENSE = 0.79  # best cosine of a hit, plain or cross-lingual (multilingual-e5-small, prefixed)
MIN_DENSE_ALONE = 0.79  # ... when BM25 does not agree on any of the top hits
MIN_COVERAGE_ANY = 0.3  # ... below which even agreeing retrievers are matching a stray word ("上海")
MIN_COVERAGE = 0.4  # share of the question's content words known to the corpus
# Agreeing retrievers at least this close judge the content: the question is on topic whatever share of
# its words the corpus knows (dialect and slang: "门口外摆摊儿能批不"). Calibration split: 0.85-0.88 let
# one policy question through and no negative; the middle taken.
DENSE_OVER_WORDS = 0.87

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

# A request for help breaking the law or deceiving the authorities: forged records, tax evasion, bribery,
# collusion, other people's personal data, fraud on subsidies or creditors. Refused with the fixed reason
# `unlawful` when it asks for help (not when it asks about penalties, prevention or reporting).
_UNLAWFUL_ASK = (r"\b(?:help (?:me|us)|can you|could you|how (?:do|can|could|should|would|might) (?:we|i)|how to|teach (?:me|us)|"
        r"give me|get me|find (?:me|out)|look up|write (?:me |us )?(?:a|an|some)|what(?:'?s| is) the (?:easiest|best|quickest|"
        r"simplest|safest) way|is there (?:a|any) way|any way to|we (?:want|need|plan) to|we'?d like to|i (?:want|need) to|"
        r"tell (?:me|us) how|show (?:me|us) how)\b|"
        r"帮我|帮我们|帮忙|教我|教下|怎么|怎样|如何|有什么办法|有冇办法|有没有办法|点样|我们想|我想|给我|告诉我|查一下|查下|怎么操作")
_UNLAWFUL_ACT = (
    # forging and fabricating
    r"\b(?:fabricat\w*|falsif\w*|forg(?:e|ed|ing)|counterfeit\w*|doctor(?:ed|ing)?)\b|"
    r"\b(?:fake|bogus|made-up|false)\s+(?:[\w&-]+\s+){0,3}(?:records?|invoices?|receipts?|documents?|certificates?|materials?|"
    r"lists?|contracts?|complaints?|reviews?|accounts?|expenses?|payroll|ledgers?|statements?|data|figures|employees?|staff|"
    r"names?|identit\w*|ids?|applications?|claims?)\b|"
    # escaping the authorities
    r"\bwithout (?:it |them |anyone |us |the \w+ )?(?:being |getting )?(?:detected|caught|noticed|found out|finding out|knowing)|"
    r"\b(?:inspectors?|authorities|tax (?:bureau|office|authorit\w+)|regulators?|auditors?|police)\s+(?:don'?t|do not|won'?t|"
    r"will not|can'?t|cannot|never)\s+(?:find|notice|see|know|detect|catch)|"
    r"\b(?:hide|conceal|cover up)\b.{0,60}\b(?:from (?:the )?(?:\w+ )?|so (?:that )?(?:the )?(?:\w+ )?)(?:inspector|authorit|tax|"
    r"regulator|auditor|police|government|bureau|officials?)|"
    r"\b(?:evade|dodge|avoid paying)\s+(?:\w+\s+)?tax\w*|\btax evasion\b|"
    # bribery and collusion
    r"\bbrib\w*|\bpay off (?:an? |the |our )?(?:\w+ )?(?:inspector|official|officer|auditor|regulator|judge)s?\b|\bkickbacks?\b|"
    r"\b(?:coordinate|rig|fix)\w*\s+(?:our |the |their )?(?:bids?|tenders?|prices?)\b|\bbid[- ]rigging\b|\bcollu\w*|"
    # other people's personal data
    r"\b(?:names?|phone numbers?|home address\w*|id (?:card )?numbers?|identity card\w*|addresses)\b.{0,60}"
    r"\b(?:complain\w*|report\w*|competitor\w*|whistleblow\w*|filed|owner|boss|rival\w*)|"
    r"\b(?:competitor|rival|complainant|whistleblower|employee|customer|neighbou?r)\w*'?s?\b.{0,40}\b(?:home address|"
    r"phone numbers?|id (?:card )?numbers?|identity card|personal (?:data|information|details))|"
    # fraud on public money and creditors
    r"\bshell compan\w*|\b(?:claim|get|collect)\w* (?:the same |a |one )?(?:subsid\w+|grants?)\b.{0,20}\b(?:\d+|twice|"
    r"several|multiple|many) times|\bdouble[- ]dip\w*|"
    r"\b(?:avoid|get out of|escape|dodge|skip|walk away from) (?:paying )?(?:\w+ )?(?:debts?|what we owe|wages|suppliers?|creditors?)|"
    r"\bimpersonat\w*|\b(?:in|under|using) (?:another|someone else'?s|a different|other) (?:compan\w*|firm\w*|enterprise\w*)'?s? name|"
    # Chinese
    r"假(?:的|嘅)?.{0,6}?(?:研发|费用|台账|发票|合同|材料|名单|账|证明|简历|申报|投诉|评价|数据|员工|雇员|工资|流水|报表)|"
    r"伪造|编造|虚开|虚报|虚构|造假|做假账|假账|冒用|冒充|盗用(?:别|他)|"
    r"串通|围标|陪标|行贿|贿赂|塞钱|送红包|"
    r"逃税|偷税|漏税|(?:避开|躲避|逃避)(?:税务|检查|监管|执法|债务)|"
    r"(?:不|唔|别|莫)(?:被|俾|让|给)?.{0,8}?(?:发现|查到|察觉)|"
    r"赖掉|赖账|逃废债|恶意注销|身份证号|家庭住址|(?:举报|投诉)(?:人|者)的?(?:姓名|名字|电话|手机|信息|身份)|"
    r"刷单|套取|骗取|骗补|重复申领"
)
_LAWFUL_FRAME = (r"\b(?:penalt\w*|punish\w*|fine[sd]?|crack(?:s|ing)? down|combat\w*|prevent\w*|(?:do|can|should) (?:we|i) report|"
           r"report(?:ing)? (?:a|an|the|it|them|this|fraud|bribery|corruption)|what happens if|consequences?|protect\w* (?:us|our|against)|victims?|spot|identify|verify|"
           r"check whether|is it (?:legal|allowed)|legally)\b|打击|查处|处罚|惩戒|惩处|防范|防止|举报(?!人|者)|维权|被.{0,6}(?:冒用|伪造|骗)|是否合法|合规")
UNLAWFUL_ASK = re.compile(_UNLAWFUL_ASK, re.I)
UNLAWFUL_ACT = re.compile(_UNLAWFUL_ACT, re.I)
LAWFUL_FRAME = re.compile(_LAWFUL_FRAME, re.I)


def asks_for_unlawful_help(folded: str) -> bool:
    """`folded`: the question in NFKC, simplified form."""
    return bool(UNLAWFUL_ACT.search(folded) and UNLAWFUL_ASK.search(folded) and not LAWFUL_FRAME.search(folded))


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
    r"(?:monthly|annual|yearly) rent|credit (?:limit|line)|cap on|多少|多久|多长时间|多大|(?<!哪)几[天年个月家项]|"
    r"比例|上限|期限|截止",
    re.I,
)


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
    reason: str  # "", "injection", "unlawful", "off_topic", "other_place", "other_year", "amount_not_stated", "detail_not_stated", "weak_match"
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
           min_coverage: float = MIN_COVERAGE, continues: bool = False) -> GateDecision:
    """Whether the library covers the question. `continues`: it is a follow-up of a turn that was
    answered, so its topic is that turn's policy topic, whatever words it is put in."""
    s = signals(plan, hits, vocab)
    # Full-width or traditional forms must not slip past the patterns.
    folded = fold(question)
    if INJECTION.search(folded):
        return GateDecision(False, "injection", s)
    if asks_for_unlawful_help(folded):
        return GateDecision(False, "unlawful", s)
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
        return GateDecision(False, "off_topic" if s["coverage"] < min_coverage and not continues else "weak_match", s)
    # The share of words the library knows tells a policy question from another; a follow-up's words
    # ("那市里呢？") are the conversation's, not the library's.
    on_content = s["agree"] and s["dense_best"] >= DENSE_OVER_WORDS
    if not continues and not on_content and (s["coverage"] < min_coverage and not s["agree"]
                                             or s["coverage"] < MIN_COVERAGE_ANY):
        return GateDecision(False, "off_topic", s)
    if AMOUNT_QUESTION.search(question) and not any(_MONEY.search(h.measure.text) for h in hits[:3]):
        return GateDecision(False, "amount_not_stated", s)
    detail = asked_detail(folded)
    if detail is not None and not any(states_detail(detail, to_simplified(h.measure.text), h.measure.departments,
                                                    _dated(h.document)) for h in hits[:3]):
        return GateDecision(False, "detail_not_stated", s | {"detail": detail.kind})
    return GateDecision(True, "", s)


def _dated(document: Document) -> bool:
    """Whether a document gives when it applies: an effective date, an end of validity or a validity clause."""
    return bool(document.effective or document.valid_until or document.validity_text)
