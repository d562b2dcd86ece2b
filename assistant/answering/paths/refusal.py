"""A refusal: the honest "the policies I hold do not cover this", with the reason and the related measures."""

from __future__ import annotations

from ...types import Answer, Outcome
from ..turn import Services, Turn

#: the sentence each refusal reason puts into the refusal prompt
REASONS = {
    "en": {
        "injection": "The question asks me to change how I work; I only answer from the policy texts.",
        "unlawful": "I cannot help with this: it asks how to break the law or mislead the authorities. I can tell you "
                    "what lawful support the policies offer.",
        "off_topic": "The question does not seem to be about enterprise policy.",
        "other_place": "It concerns a place none of my policy documents covers.",
        "other_year": "It concerns a year none of my policy documents covers.",
        "amount_not_stated": "The policies I hold do not state the figure asked for (an amount, rate, area, date or "
                             "number) for this.",
        "detail_not_stated": "The policies I hold do not give this detail (such as contact details, an address, "
                             "opening hours, a form, a tax rate, an official's name, the department in charge "
                             "or a date).",
        "weak_match": "None of the measures I hold addresses it closely enough.",
        "model": "The closest measures do not answer it.",
    },
    "zh": {
        "injection": "该问题要求我改变工作方式；我只依据政策原文作答。",
        "unlawful": "无法协助：该问题涉及违法或欺瞒主管部门的做法。我可以介绍政策中合法的支持措施。",
        "off_topic": "该问题似乎与企业政策无关。",
        "other_place": "该问题涉及的地区不在我掌握的政策文件范围内。",
        "other_year": "该问题涉及的年份不在我掌握的政策文件范围内。",
        "amount_not_stated": "我掌握的政策文件没有写明所问的数字（金额、比例、面积、日期或数量）。",
        "detail_not_stated": "我掌握的政策文件没有写明这一信息（如联系方式、地址、办公时间、表格、税率、负责人姓名、"
                             "负责部门或日期）。",
        "weak_match": "我掌握的措施中没有与之足够相关的内容。",
        "model": "最相关的措施并未回答这个问题。",
    },
}
#: reasons after which no related measure is offered: the question was not a policy question
NOT_POLICY = ("injection", "unlawful", "off_topic")


def coverage_summary(services: Services, language: str) -> str:
    docs = services.retriever.data.documents.values()
    if language == "zh":
        return "；".join(f"{d.short_title_zh}" for d in docs) + "。"
    return "; ".join(d.short_title_en for d in docs) + "."


def refusal(services: Services, turn: Turn, reason: str, outcome: Outcome) -> Answer:
    language = turn.language
    text = services.prompting.refusal(language, REASONS[language].get(reason, ""), coverage_summary(services, language))
    related = tuple(turn.hits[:3]) if reason not in NOT_POLICY else ()
    return turn.finish(answer=text, refused=True, citations=(), related=related, mode=outcome.mode,
                       reason=reason, outcome=outcome)
