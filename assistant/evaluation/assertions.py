"""What a sentence asserts that its cited measure does not: the evaluation judge's claim checks.

Each check reads the sentence as claims, not as a bag of words shared with the measure:
  - voice: the sentence speaks as the government or the enterprise ("We shall…", "我们可以…");
  - stance: it adds an obligation, a condition, a completed fact, a cost or payment, or an absolute
    ("must provide", "only … can", "has already issued", "free of charge", "guarantees") that the
    measure, in either language, does not state;
    (these two are the verifier's own rules, answering/claims.py: the product and its judge agree on them)
  - names: an organisation, programme or place it names is not the measure's (nor of its departments
    or document);
  - figures: a number is bound to another noun than in the measure ("40 unicorn" where it says
    "5 unicorn");
  - new content: the share of its content words found neither in the measure (with the glossary's
    synonyms), its document's titles, the question, nor the small set of words any report uses.

The rest is the judge's own: names, figures, purposes and new content are read with stems, glossary
synonyms and embeddings, where the product's verifier reads surface words.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

from ..answering import claims
from ..corpus.clean import CJK, normalize_for_index
from ..corpus.gazetteer import without_place
from ..retrieval.tokenize import STOP_EN, STOP_ZH, tokenize

_CJK_RUN = re.compile(f"[{CJK}]+")
# Bars set on the calibration half of eval/judge-references.jsonl (tests/test_judge.py re-derives them).
PURPOSE_NOVEL_SHARE = 0.5
_LATIN_WORD = re.compile(r"[A-Za-z][A-Za-z'’-]*")

# Organisations and programmes: English names end in one of these heads; Chinese ones in these suffixes.
_ORG_HEADS = ("bureau", "commission", "office", "government", "court", "center", "centre", "committee",
              "administration", "ministry", "council", "department", "agency", "exchange", "bank", "academy",
              "institute", "university", "fund", "plan", "programme", "program", "scheme", "cup", "week",
              "handbook", "manual", "team", "federation", "mayor", "governor", "director", "minister")
_EN_NAME = re.compile(r"(?:(?:[A-Z][\w'’&.-]*|of|and|the|for|on|de)\s+){0,7}(?:" +
                      "|".join(h.capitalize() for h in _ORG_HEADS) + r")\b")
# 局 ends these words without naming a body: 布局 (layout), 格局, 大局, 全局, 结局, 开局, 僵局, 终局, 变局.
_NOT_A_BODY = "(?<![布格大全结开僵残终变])"
_ZH_ORG = re.compile(f"[{CJK}]{{0,12}}?(?:管理局|分局|总局|{_NOT_A_BODY}局|委员会|法院|交易所|银行|研究院|政府|办公室|护航队|基金|总部|中心"
                     f"|市长|区长|局长|书记|主任)")
# What a Chinese organisation suffix is called in English, to find its counterpart in an English measure.
_ZH_HEAD_EN = {"局": ("bureau", "administration"), "委员会": ("commission", "committee"), "法院": ("court",),
               "交易所": ("exchange",), "银行": ("bank",), "研究院": ("academy", "institute"),
               "政府": ("government",), "办公室": ("office",), "护航队": ("team",), "基金": ("fund",),
               "总部": ("headquarters",), "中心": ("center", "centre"), "市长": ("mayor",), "区长": ("head of the district",),
               "局长": ("director",), "书记": ("secretary",), "主任": ("director",)}
_EN_HEAD_ZH = {"bureau": "局", "administration": "局|署", "commission": "委", "committee": "委", "office": "办",
               "government": "政府", "court": "法院", "center": "中心", "centre": "中心", "ministry": "部",
               "council": "会", "department": "部门|局|委", "agency": "局|机构", "exchange": "交易所", "bank": "银行",
               "academy": "院", "institute": "院|所", "university": "大学|高校", "fund": "基金", "plan": "计划",
               "programme": "计划", "program": "计划", "scheme": "计划|机制", "cup": "杯|大赛", "week": "周",
               "handbook": "手册", "manual": "手册", "team": "团|队", "federation": "联合会", "mayor": "市长",
               "governor": "省长", "director": "主任|局长", "minister": "部长"}
_QUOTED = re.compile(r"[\"“「『]([^\"”」』]{2,60})[\"”」』]")
# A Latin code glued to Chinese ("A类", "S基金") or named as a class ("Class B").
_CODE_ZH = re.compile(f"(?<![A-Za-z])([A-Za-z]{{1,4}})(?=[{CJK}])")
_CODE_EN = re.compile(r"\b(?:[Cc]lass|[Cc]ategory|[Tt]ype)\s+([A-Z])\b")
_NUMBER_WORD = re.compile(r"(?<![\w.])(\d[\d,]*(?:\.\d+)?)\s*(?:%|percent|per cent)?\s*(?:million |billion |thousand )?"
                          r"(?:[a-z-]+ ){0,1}?([a-z][a-z-]+)")

# Words any faithful report may use about any measure (its frame), in index form, stemmed for English.
_FRAME_EN = """
plan plans measure measures policy policies district districts government enterprise enterprises company companies
firm firms business businesses support supports supported promote promotes promoted encourage encouraged provide
provides help helps get gets set make makes keep keeps also well along include includes including aim aims will
would shall may can such like other others more new local area areas through via under within by way ways
is are be been to give gives given work works run runs held hold used use uses using done doing do let lets
say says state states stated cover covers covered offer offers offered serve serves according source sources
park parks city municipal shanghai one ones both each there their them they its
"""
_FRAME_ZH = """
方案 措施 政策 该 本 区 市 区里 政府 企业 公司 支持 推动 推进 鼓励 提供 帮助 进行 开展 实施 通过 依托 根据 按照 以及 并 将 会
可 可以 能 能够 要 给予 获得 享受 相关 有关 主要 进一步 持续 不断 加强 加大 强化 完善 优化 提升 提高 这 这些 此 其 各 各类 等 上海 上海市
目标 达到 力争 建设 打造 实现 为 对 在 于 由 用 以 和 与 及 或 也 都 就 还 更 更加 让 使 把 从 向 到 中 内 里
"""


@lru_cache(maxsize=1)
def _frame_words() -> frozenset[str]:
    en = {w for line in _FRAME_EN.split() for w in tokenize(spelling(line))}
    return frozenset(en | set(_FRAME_ZH.split()))


@dataclass(frozen=True)
class Finding:
    """One thing the sentence asserts that the measure does not."""

    kind: str  # voice, obligation, condition, completed, cost, absolute, name, figure, content
    detail: str


@dataclass
class MeasureText:
    """A measure as the judge reads it: its text and everything that may be named with it."""

    language: str
    text: str  # index form: text, label, title, section path, departments
    frame: str  # index form: document titles, district, number, and the issuer when no departments are named
    raw: str  # the text as written (for stance patterns that read case)
    glossary_terms: set[str] = field(default_factory=set)  # other-language terms of glossary entries it uses
    places: tuple[str, ...] = ()  # the Chinese names of its documents' places (gazetteer.chinese_names)

    def __post_init__(self) -> None:
        # Its own place is part of its frame in both languages ("静安区" for an English Jing'an plan).
        self.tokens = set(tokenize(spelling(self.text))) | set(tokenize(spelling(self.frame))) | {
            t for term in (*self.glossary_terms, *self.places) for t in tokenize(spelling(term))}
        self.pool = self.text + " " + self.frame + " " + " ".join(self.glossary_terms) + " " + " ".join(self.places)


_SPELLING = [(re.compile(p), r) for p, r in (
    (r"centre", "center"), (r"licence", "license"), (r"labour", "labor"), (r"programme", "program"),
    (r"(?<=[a-z])is(e|ed|es|ing|ation|ations)\b", r"iz\1"), (r"(?<=[a-z])ys(e|ed|es|ing)\b", r"yz\1"))]


def spelling(text: str) -> str:
    """British spellings in American form, on both sides of a comparison ("centre" is "center")."""
    for pattern, repl in _SPELLING:
        text = pattern.sub(repl, text)
    return text


def claim_language(text: str) -> str:
    """'zh' when Chinese characters outweigh Latin letters (a character weighs about four letters)."""
    cjk = sum(len(r) for r in _CJK_RUN.findall(text))
    latin = sum(len(w) for w in _LATIN_WORD.findall(text))
    return "zh" if cjk and cjk * 4 > latin else "en"


def voice(text: str) -> Finding | None:
    m = claims.FIRST_PERSON.search(text)
    return Finding("voice", f"speaks in the first person ('{m.group(0)}')") if m else None


def stances(text: str, measure: MeasureText) -> list[Finding]:
    return [Finding(kind, f"'{said}' is not in the measure") for kind, said in claims.stances(text, measure.raw)]


def names(text: str, measure: MeasureText) -> list[Finding]:
    """Organisations, programmes, quoted names and class codes that the measure and its document do not
    name. Across languages only the kind of body is compared (a bureau needs a 局, a 局 a bureau)."""
    out = []
    pool = measure.pool
    crossed = claim_language(text) != measure.language
    for m in _EN_NAME.finditer(text):
        phrase = m.group(0).strip()
        phrase = re.sub(r"^(?:(?:of|and|the|for|on|de)\s+)+", "", phrase, flags=re.I)
        words = phrase.split()
        head = words[-1].lower()
        if len(words) < 2 and head not in ("mayor", "governor", "minister"):
            continue
        if crossed:
            if not re.search(_EN_HEAD_ZH.get(head, "$^"), pool):
                out.append(Finding("name", f"'{phrase}': the measure names no such body"))
        elif not _contiguous(phrase, pool):
            out.append(Finding("name", f"'{phrase}' is not named in the measure"))
    for m in _ZH_ORG.finditer(normalize_for_index(text)):
        name = m.group(0)
        suffix = next(s for s in sorted(_ZH_HEAD_EN, key=len, reverse=True) if name.endswith(s) or s in name[-3:])
        if crossed:
            if not any(h in pool for h in _ZH_HEAD_EN[suffix]):
                out.append(Finding("name", f"'{name}': the measure names no such body"))
        elif not _core_in(name, pool, measure.places) and not _named_after_words(name, suffix, pool, measure.places):
            out.append(Finding("name", f"'{name}' is not named in the measure"))
    if not crossed:
        for q in _QUOTED.findall(text):
            q = normalize_for_index(q)
            if q not in pool and not _contiguous(q, pool):
                out.append(Finding("name", f"'{q}' is not named in the measure"))
    for code in _CODE_ZH.findall(text) + _CODE_EN.findall(text):
        c = code.lower()
        if not re.search(rf"(?<![a-z]){re.escape(c)}(?![a-z])", pool):
            out.append(Finding("name", f"'{code}' is not in the measure"))
    return out


def _contiguous(phrase: str, pool: str) -> bool:
    """The phrase's words, stemmed, appear in this order and next to each other in the pool."""
    words = tokenize(normalize_for_index(phrase))
    if not words:
        return True
    pool_words = tokenize(pool)
    n = len(words)
    return any(pool_words[i:i + n] == words for i in range(len(pool_words) - n + 1))


# What may stand just before a Chinese name inside a longer run: a function word or a policy verb
# ("徐汇将完善公共法律服务中心" names 公共法律服务中心).
_BEFORE_NAME = re.compile(r"(?:[将是由在向和与及的对为把被从到经要会可能并或、]|完善|建设|建立|设立|依托|打造|推进|发挥|加强|支持"
                          r"|鼓励|组建|开设|提升|优化|深化|做优|成立|通过|联合|会同|牵头)$")


def _named_after_words(name: str, head: str, pool: str, places: tuple[str, ...]) -> bool:
    """A name caught with the words before it: the longest tail that the measure names (the head and
    at least two characters), when what precedes it ends in a function word or a verb."""
    for start in range(1, len(name) - len(head) - 1):
        tail = name[start:]
        if _BEFORE_NAME.search(name[:start]) and _core_in(tail, pool, places):
            return True
    return False


def _core_in(name: str, pool: str, places: tuple[str, ...]) -> bool:
    """A Chinese organisation name is the measure's when, its own place taken off, it is in the pool
    (静安区财政局 and 区财政局 are one body; 城管局 is not 市场监管局)."""
    core = without_place(name, places)
    return bool(core) and (core in pool or name in pool)


_PURPOSE = re.compile(r"\b(?:so that|so as to|in order to|designed to|aimed at|with the aim of)\b|以便|为了|旨在|目的是")


def purpose(text: str, measure: MeasureText, question: str = "") -> Finding | None:
    """Same language: a purpose clause ("so that investors can compare…") whose content is mostly the
    sentence's own invention."""
    if claim_language(text) != measure.language:
        return None
    m = _PURPOSE.search(text)
    if not m:
        return None
    novel, n = novel_words(text[m.end():], measure, question)
    if n and len(novel) >= 2 and len(novel) / n > PURPOSE_NOVEL_SHARE:
        return Finding("purpose", f"a purpose the measure does not state ({', '.join(novel[:4])})")
    return None


def figures(text: str, measure: MeasureText) -> list[Finding]:
    """Same language only: each digit number in the sentence keeps the noun it counts in the measure."""
    if claim_language(text) != "en" or measure.language != "en":
        return []
    pairs = {(n.replace(",", ""), w) for n, w in _number_pairs(measure.raw)}
    out = []
    for n, w in _number_pairs(text):
        n = n.replace(",", "")
        if not any(pn == n for pn, _ in pairs) or (len(n) == 4 and 1990 <= int(n) <= 2049):
            continue  # an unknown number is the number check's to report; a year counts nothing  # an unknown number is the number check's to report
        if not any(pn == n and _stem(pw) == _stem(w) for pn, pw in pairs):
            out.append(Finding("figure", f"{n} counts '{w}' here, not in the measure"))
    return out


def _number_pairs(text: str) -> list[tuple[str, str]]:
    out = []
    for m in _NUMBER_WORD.finditer(text.lower()):
        word = m.group(2)
        if word not in STOP_EN and word not in ("and", "or", "yuan", "square", "per", "of", "a", "the"):
            out.append((m.group(1), word))
    return out


def _stem(word: str) -> str:
    t = tokenize(word)
    return t[0] if t else word


def novel_words(text: str, measure: MeasureText, question: str = "") -> tuple[list[str], int]:
    """(content words of the sentence found neither in the measure, its glossary synonyms, its document's
    titles, the question nor the frame; how many content words it has). A Chinese word counts as found
    when it is a substring of the measure's text, whatever the word boundaries there."""
    norm = normalize_for_index(text)
    question_tokens = set(tokenize(spelling(normalize_for_index(question)))) if question else set()
    frame = _frame_words()
    words = [w for w in tokenize(spelling(norm)) if w not in STOP_EN and w not in STOP_ZH]
    # jieba's search mode adds a long word's parts; the long word alone is the claim's.
    words = [w for w in words if not (_CJK_RUN.fullmatch(w) and any(w != o and w in o for o in words))]
    words = list(dict.fromkeys(words))
    novel = [w for w in words if w not in measure.tokens and w not in question_tokens and w not in frame
             and not (_CJK_RUN.fullmatch(w) and w in measure.pool)]
    return novel, len(words)


_DIGITS = re.compile(r"\d+(?:\.\d+)?")
_YES_NO = re.compile(r"(?:^|[.?!。？！]\s*)(?:is|are|does|do|can|could|will|would|has|have|may|should|did)\s"
                     r"|有没有|有无|是否|能否|能不能|会不会|可不可以|可否|[吗嘛]\s*[？?]?\s*$", re.I)


def informative_words(text: str, measure: MeasureText, question: str = "") -> list[str]:
    """Content words of the sentence that are the measure's and not the question's nor the frame's:
    what it tells the asker that they did not say themselves."""
    norm = normalize_for_index(text)
    question_tokens = set(tokenize(spelling(normalize_for_index(question)))) if question else set()
    frame = _frame_words()
    places = {t for p in measure.places for t in tokenize(p)}
    own = set(tokenize(spelling(measure.text)))
    words = [w for w in tokenize(spelling(norm)) if w not in STOP_EN and w not in STOP_ZH]
    # Across languages no word is the measure's as written: whether the sentence says what the measure
    # does is the alignment's to judge (Judge.assess); here only what the asker did not say counts.
    crossed = claim_language(text) != measure.language
    return [w for w in dict.fromkeys(words) if w not in question_tokens and w not in frame and w not in places
            and (crossed or w in own or (_CJK_RUN.fullmatch(w) and w in measure.text))]


def says_nothing(text: str, measure: MeasureText, question: str) -> bool:
    """An empty sentence: a lead-in to a list that is not there, or (to a question that is not a yes or
    no) nothing of the measure beyond the question's words and no figure the question does not give."""
    plain = text.strip().rstrip(".。")
    if plain.endswith((":", "：")):
        return True
    if _YES_NO.search(question.strip()):
        return False
    if set(_DIGITS.findall(text)) - set(_DIGITS.findall(question)):
        return False  # a figure is a fact; whether it is the measure's is the figure check's to say
    return not informative_words(text, measure, question)
