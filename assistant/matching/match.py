"""The policy health check: every measure of the library, for one profile, as applies / may apply
(needs information) / does not apply, with the conditions met and missing cited to the measure's words.

The decision for one measure, top to bottom:
1. its document has expired            -> does not apply (expired), whatever else holds;
2. none of its offers covers the enterprise's district -> does not apply (other district);
3. it offers nothing the enterprise asked for          -> does not apply (not among the needs);
4. the best offer for the needs: every condition met and the needs known -> applies;
   a condition whose field is unknown (or one the text does not spell out) -> may apply;
   a condition not met                                  -> does not apply (condition not met).
A required field that is unknown never yields "applies": whoever the measure names in a sentence
that offers nothing, or in more than one sentence, counts as a condition while the profile's field
for it is unknown (named once, inside one offer, it is that offer's condition).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from datetime import date

from ..types import Document, Measure
from .labels import BENEFICIARY_CATEGORIES, LabelSet, MeasureLabels, Offer, Term
from .profile import Facts, Profile, facts
from .vocabulary import Vocabulary, matching_form

APPLIES, MAY_APPLY, DOES_NOT_APPLY = "applies", "may_apply", "does_not_apply"
LEVELS = (APPLIES, MAY_APPLY, DOES_NOT_APPLY)


@dataclass(frozen=True)
class Condition:
    text: str
    met: bool | None
    quote: str
    category: str = ""

    def to_json(self) -> dict:
        return {"text": self.text, "met": self.met, "quote": self.quote}


@dataclass(frozen=True)
class MeasureResult:
    measure: Measure
    document: Document
    level: str
    reason: str
    reason_code: str  # expired, other_district, not_needed, condition_not_met, needs_information, no_support, met
    conditions: tuple[Condition, ...]
    departments: tuple[str, ...]
    expired: bool
    score: float
    kinds: tuple[str, ...]
    offer: str = ""

    def to_json(self) -> dict:
        return {
            "measure_id": self.measure.measure_id,
            "doc_id": self.document.doc_id,
            "label": self.measure.label,
            "level": self.level,
            "reason": self.reason,
            "conditions": [c.to_json() for c in self.conditions],
            "departments": list(self.departments),
            "expired": self.expired,
        }


@dataclass(frozen=True)
class HealthCheck:
    profile: Profile
    results: tuple[MeasureResult, ...]
    made_on: date
    library_version: str

    def level(self, level: str) -> list[MeasureResult]:
        return [r for r in self.results if r.level == level]

    def to_json(self) -> dict:
        return {"profile": self.profile.to_json(), "results": [r.to_json() for r in self.results]}


# ---------------------------------------------------------------- wording (en / zh)
_T = {
    "district": ("Registered in {what}", "注册在{what}"),
    "for": ("For {what}", "面向{what}"),
    "unspecified": ("Conditions the text names but does not spell out (ask the department)",
                    "文中提到但未列明的条件（请向主管部门确认）"),
    "offers": ("Offers {what}, which you asked for", "提供{what}，与您的需求相符"),
    "expired": ("Expired: its document was valid until {what}", "已失效：所属文件有效期至{what}"),
    "other_district": ("Other district: it applies in {what}", "其他区域：适用于{what}"),
    "not_needed": ("Offers {what}, not among the needs you gave", "提供{what}，不在您填写的需求之内"),
    "no_support": ("States no support an enterprise can take up", "未写明企业可申请或使用的支持"),
    "not_met": ("Condition not met: {what}", "条件不符：{what}"),
    "unknown": ("Needs information: {what}", "需要补充信息：{what}"),
    "no_needs": ("Needs information: what support you are looking for", "需要补充信息：您需要哪类支持"),
    "met": ("Every condition stated is met", "所列条件均已满足"),
    "unknown_district": ("your district", "所在区"),
    "unknown_employees": ("number of employees", "员工人数"),
    "unknown_founded_year": ("year founded", "成立年份"),
    "unknown_qualifications": ("qualifications held", "已获资质"),
    "unknown_industry": ("industry", "所属行业"),
    "unknown_unspecified": ("conditions the text does not spell out", "文中未列明的条件"),
    "and": (", ", "、"),
}


def _t(key: str, lang: str, **kw) -> str:
    return _T[key][1 if lang == "zh" else 0].format(**kw)


# ---------------------------------------------------------------- one condition against the facts
_FIELD_OF = {"size": "employees", "stage": "founded_year", "qualification": "qualifications", "type": "qualifications",
             "industry": "industry"}


def _field_of(t: Term) -> str:
    """The profile field that decides a condition: fast growth is a recognition ("gazelle"), not an age."""
    return "qualifications" if (t.category, t.key) == ("stage", "growth") else _FIELD_OF[t.category]


def _beneficiary_met(t: Term, f: Facts) -> bool | None:
    if t.category == "size":
        return None if f.size is None else f.size == t.key
    if t.category == "stage":
        if t.key == "startup":
            return f.startup
        return f.growth
    if t.category == "qualification":
        return None if f.qualifications is None else t.key in f.qualifications
    if t.category == "type":
        if t.key in f.types:
            return True
        return None if f.qualifications is None else False
    if t.category == "industry":
        return None if f.industries is None else t.key in f.industries
    return None


def _any(states: list[bool | None]) -> bool | None:
    if any(s is True for s in states):
        return True
    if any(s is None for s in states):
        return None
    return False


def _all(states: list[bool | None]) -> bool | None:
    if any(s is False for s in states):
        return False
    if any(s is None for s in states):
        return None
    return True


@dataclass(frozen=True)
class _Judged:
    offer: Offer
    state: bool | None
    conditions: tuple[Condition, ...]
    missing: tuple[str, ...]  # unknown fields
    failed: tuple[str, ...]  # texts of conditions not met
    kinds: tuple[str, ...]
    targeted: int  # beneficiary conditions met: a measure aimed at this enterprise
    district_state: bool | None


def _district_text(districts: tuple[str, ...], vocab: Vocabulary, lang: str) -> str:
    city = {vocab.city_of(d) for d in districts}
    if len(city) == 1 and None not in city:
        (name,) = city
        if set(districts) == set(vocab.cities[name].get("districts", ())):
            return vocab.cities[name].get("zh", name) if lang == "zh" else name
    names = [vocab.districts.get(d, {}).get("zh", d) if lang == "zh" else d for d in districts]
    return _t("and", lang).join(names)


def _judge(offer: Offer, labels: MeasureLabels, doc: Document, f: Facts, vocab: Vocabulary, lang: str,
           need_kinds: frozenset[str] | None) -> _Judged:
    conds: list[Condition] = []
    missing: list[str] = []
    failed: list[str] = []
    districts = offer.districts or labels.scope
    where_quote = offer.places[0].quote if offer.places and offer.districts else doc.title
    if f.district is None:
        d_state = None
        missing.append(_t("unknown_district", lang))
    else:
        d_state = f.district in districts
    d_text = _t("district", lang, what=_district_text(districts, vocab, lang))
    conds.append(Condition(d_text, d_state, where_quote, "district"))
    if d_state is False:
        failed.append(d_text)
    group = [_beneficiary_met(t, f) for t in offer.beneficiaries]
    g_state = _any(group) if group else True
    if offer.beneficiaries:
        for t, s in zip(offer.beneficiaries, group, strict=True):
            # The named beneficiaries are alternatives: once one is met, the others are not conditions.
            if g_state is True and s is not True or g_state is None and s is False:
                continue
            text = _t("for", lang, what=vocab.label(t.category, t.key, lang))
            conds.append(Condition(text, s, t.quote, t.category))
        if g_state is None:
            missing += [_t(f"unknown_{_field_of(t)}", lang) for t, s in zip(offer.beneficiaries, group,
                                                                                    strict=True) if s is None]
        elif g_state is False:
            failed.append(_t("and", lang).join(vocab.label(t.category, t.key, lang) for t in offer.beneficiaries))
    c_state: bool | None = True
    if offer.conditional is not None:
        c_state = None
        conds.append(Condition(_t("unspecified", lang), None, offer.conditional.quote, "condition"))
        missing.append(_t("unknown_unspecified", lang))
    kinds = tuple(k for k in offer.kinds if need_kinds is None or k in need_kinds)
    for k in kinds if need_kinds else ():
        quote = next((t.quote for t in labels.terms if t.category == "kind" and t.key == k
                      and offer.start <= t.start < offer.end), offer.quote)
        conds.append(Condition(_t("offers", lang, what=vocab.label("kind", k, lang)), True, quote, "kind"))
    state = _all([d_state, g_state, c_state])
    targeted = sum(1 for s in group if s is True)
    return _Judged(offer, state, tuple(conds), tuple(dict.fromkeys(missing)), tuple(failed), kinds, targeted,
                   d_state)


def _dedupe_terms(terms: list[Term]) -> list[Term]:
    seen: set[tuple[str, str]] = set()
    out = []
    for t in terms:
        if (t.category, t.key) not in seen:
            seen.add((t.category, t.key))
            out.append(t)
    return out


def _words(text: str) -> set[str]:
    form = matching_form(text)
    latin = set(re.findall(r"[a-z]{4,}", form))
    cjk = re.findall(r"[\u4e00-\u9fff]+", form)
    return latin | {run[i:i + 2] for run in cjk for i in range(len(run) - 1)}


def _rank(j: _Judged, need_words: set[str]) -> tuple:
    order = {True: 2, None: 1, False: 0}[j.state]
    overlap = len(need_words & _words(j.offer.quote)) if need_words else 0
    return (order, len(j.kinds), j.targeted, overlap)


def judge_measure(measure: Measure, doc: Document, labels: MeasureLabels, f: Facts, vocab: Vocabulary,
                  lang: str, today: date) -> MeasureResult:
    expired = bool(doc.valid_until and doc.valid_until < today)
    departments = labels.departments

    def result(level: str, reason: str, code: str, conds=(), score=0.0, kinds=(), offer="") -> MeasureResult:
        return MeasureResult(measure, doc, level, reason, code, tuple(conds), departments, expired, score,
                             tuple(kinds), offer)

    if expired:
        return result(DOES_NOT_APPLY, _t("expired", lang, what=doc.valid_until.isoformat()), "expired")
    offers = labels.offers
    if f.district is not None:
        everywhere = set(labels.scope) | {d for o in offers for d in o.districts}
        if f.district not in everywhere and not any(f.district in (o.districts or labels.scope) for o in offers):
            where = tuple(sorted({d for o in offers for d in (o.districts or labels.scope)})) or labels.scope
            return result(DOES_NOT_APPLY, _t("other_district", lang, what=_district_text(where, vocab, lang)),
                          "other_district")
    if not offers:
        return result(DOES_NOT_APPLY, _t("no_support", lang), "no_support")
    need_kinds = f.need_kinds
    relevant = [o for o in offers if need_kinds is None or set(o.kinds) & need_kinds]
    if not relevant:
        kinds = [vocab.label("kind", k, lang) for k in labels.kinds]
        return result(DOES_NOT_APPLY, _t("not_needed", lang, what=_t("and", lang).join(kinds)), "not_needed",
                      kinds=labels.kinds)
    need_words = _words(f.need_text)
    judged = sorted((_judge(o, labels, doc, f, vocab, lang, need_kinds) for o in relevant),
                    key=lambda j: _rank(j, need_words), reverse=True)
    best = judged[0]
    kinds_all = tuple(dict.fromkeys(k for j in judged if j.state is not False for k in j.kinds))
    overlap = len(need_words & _words(" ".join(j.offer.quote for j in judged))) if need_words else 0
    local = 1.0 if len(labels.scope) == 1 else 0.0
    strength = dict(labels.strength)
    score = (sum(min(6, strength.get(k, 1)) for k in kinds_all) + 1.5 * best.targeted
             + 0.3 * min(3, sum(1 for j in judged if j.state))
             + 0.5 * local + 0.1 * min(10, overlap))
    if best.state is False:
        code = "other_district" if best.district_state is False else "condition_not_met"
        reason = _t("not_met", lang, what="; ".join(best.failed))
        return result(DOES_NOT_APPLY, reason, code, best.conditions, score, best.kinds, best.offer.quote)
    if best.state is True:
        # Whoever the measure names in a sentence that offers nothing, or names more than once, may be
        # whom the whole measure is for: while that field is unknown, the verdict is not a confident one.
        # Named once, inside one offer, a beneficiary is that offer's condition only. Fast growth is
        # no field of the profile: outside its own offer it is who acts ("rely on the gazelles to drive").
        named = [t for t in labels.terms if t.category in BENEFICIARY_CATEGORIES
                 and (t.category, t.key) != ("stage", "growth")]
        times = Counter((t.category, t.key) for t in named)
        named = [t for t in named if times[(t.category, t.key)] > 1
                 or not any(o.start <= t.start < o.end for o in offers if o.start >= 0)]
        unknown = [t for t in named if _beneficiary_met(t, f) is None]
        if f.industries is None:
            # An offer for the needs that names industries may be meant for them alone.
            unknown += [t for j in judged for t in j.offer.mentions]
        if unknown:
            extra = tuple(Condition(_t("for", lang, what=vocab.label(t.category, t.key, lang)), None, t.quote, t.category)
                          for t in _dedupe_terms(unknown))
            missing = tuple(dict.fromkeys(_t(f"unknown_{_field_of(t)}", lang) for t in unknown))
            best = _Judged(best.offer, None, best.conditions + extra, missing, best.failed, best.kinds, best.targeted,
                           best.district_state)
    if best.state is None or need_kinds is None:
        reason = _t("unknown", lang, what=_t("and", lang).join(best.missing)) if best.missing else _t("no_needs", lang)
        if need_kinds is None and best.missing:
            reason += "; " + _t("no_needs", lang).split("：" if lang == "zh" else ": ", 1)[-1]
        return result(MAY_APPLY, reason, "needs_information", best.conditions, score, kinds_all, best.offer.quote)
    if any(c.met is not True for c in best.conditions):
        # Never a confident verdict over a condition that is not known to be met.
        what = _t("and", lang).join(c.text for c in best.conditions if c.met is not True)
        return result(MAY_APPLY, _t("unknown", lang, what=what), "needs_information", best.conditions, score,
                      kinds_all, best.offer.quote)
    return result(APPLIES, _t("met", lang), "met", best.conditions, score, kinds_all, best.offer.quote)


def health_check(profile: Profile, documents: dict[str, Document], measures: dict[str, Measure], labels: LabelSet,
                 vocab: Vocabulary, today: date) -> HealthCheck:
    """Every measure judged for the profile; applies first (best first), then may apply, then the rest."""
    f = facts(profile, vocab, today)
    lang = profile.lang
    results = [judge_measure(m, documents[m.doc_id], labels.labels[mid], f, vocab, lang, today)
               for mid, m in measures.items() if mid in labels.labels]
    order = {APPLIES: 0, MAY_APPLY: 1, DOES_NOT_APPLY: 2}
    results.sort(key=lambda r: (order[r.level], -r.score))
    return HealthCheck(profile, tuple(results), today, labels.library_version)
