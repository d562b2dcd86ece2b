"""Details a question may ask for that policy measures seldom state: an office's phone number,
address, opening hours, web address, a form's number, a tax rate, a named official.

Such a question is answerable only when a retrieved measure states a detail of that kind; otherwise
the measure closest in topic (the service centre, the platform, the tax office) is not an answer, and
the honest reply is that the policies do not give it. The patterns are the language's, not any
document's: what a detail of each kind looks like in a text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Detail:
    kind: str
    asked: re.Pattern  # the question asks for it (matched on NFKC-folded, simplified text)
    stated: re.Pattern  # a text states one


DETAILS = (
    Detail("phone",
           re.compile(r"\b(?:phone|telephone|hotline|contact number|phone number)\b|电话|热线|联系方式", re.I),
           re.compile(r"(?<!\d)(?:\d{3,4}[-\s]?)?\d{7,8}(?!\d)|(?<!\d)12345(?!\d)|热线|电话|hotline|phone", re.I)),
    Detail("web",
           re.compile(r"\bwebsite address\b|\bweb address\b|\burl\b|\bwebsite\b.*\b(?:what|which)\b|\b(?:what|which)\b.*"
                      r"\bwebsite\b|e-?mail address|网址|官网|网站是|链接|邮箱", re.I),
           re.compile(r"https?://|www\.|\.(?:gov\.)?cn\b|\.com\b|@|网址|网站|邮箱|website", re.I)),
    Detail("hours",
           re.compile(r"opening hours|office hours|business hours|what time\b.*\bopen|\bopen (?:on )?(?:saturdays?|"
                      r"sundays?|weekends?)|几点|开门|营业时间|办公时间|上班时间|周[六日末]上班|周[六日末]开", re.I),
           re.compile(r"\d{1,2}\s*[:：]\s*\d{2}|\d{1,2}\s*(?:am|pm)\b|[上下]午\s*\d|工作日|working days?|周[一二三四五六日]|"
                      r"星期|\bweekdays?\b", re.I)),
    Detail("address",
           re.compile(r"\b(?:the|your|its|their|office|centre|center|hall)(?:'s)? address\b|\baddress (?:of|for)\b|"
                      r"\blocated at\b|地址|门牌", re.I),
           re.compile(r"\d+\s*号|[路街道]\s*\d+|\b\d+\s+\w+\s+(?:road|street|avenue|lu)\b|地址|\baddress\b", re.I)),
    Detail("form",
           re.compile(r"\bform (?:number|no\.?)\b|\bwhich form\b|表格编号|表号|哪张表|什么表格|表格叫什么", re.I),
           re.compile(r"表|\bforms?\b|申请书|template|模板", re.I)),
    Detail("tax_rate",
           re.compile(r"\b(?:vat|tax|tariff|duty|levy|customs) rate|\brate of (?:vat|tax|duty)\b|税率|征收率|关税|"
                      r"缴费比例|费率", re.I),
           re.compile(r"税率|征收率|关税|缴费比例|费率|tax rate|vat rate|tariff|contribution rate", re.I)),
    Detail("official",
           re.compile(r"\bwho is the (?:current |new )?(?:director|head|mayor|chief|secretary|chair\w*)\b|"
                      r"\bname of the (?:\w+ ){0,6}(?:officer|official|director|person|clerk)\b|局长|区长|市长|书记|"
                      r"主任是谁|负责人是谁|负责人叫|经办人", re.I),
           re.compile(r"同志|先生|女士|\b(?:Mr|Ms|Mrs|Dr)\b\.?\s+[A-Z]", re.I)),
)


def asked_detail(folded: str) -> Detail | None:
    """The kind of detail the question asks for, if it asks for one of them."""
    return next((d for d in DETAILS if d.asked.search(folded)), None)
