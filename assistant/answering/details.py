"""Details a question may ask for that policy measures seldom state: an office's phone number,
address, opening hours, web address, a form's number, a tax rate, a named official, the department
that carries a measure out, when something happens, where a place is.

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


#: numbers as English writes them in a period ("within three months")
SPELLED_NUMBERS = "one|two|three|four|five|six|seven|eight|nine|ten|twelve|fifteen|twenty|thirty|sixty|ninety"

_DATES = re.compile(r"(?<!\d)(?:19|20)\d\d(?!\d)|\d{1,2}\s*月|[一二三四五六七八九十]+月|年底|年内|年前|季度|上半年|"
                    r"下半年|每年|每季|每月|\b(?:january|february|march|april|june|july|august|september|"
                    r"october|november|december|quarter|annual(?:ly)?|yearly|every year|by the end of)\b|"
                    # a period counted from an event: "within three months after the exhibition", "30日内"
                    rf"\bwithin (?:\d+|a|an|{SPELLED_NUMBERS})(?:[ -]\w+)? (?:days?|weeks?|months?|years?)\b|"
                    r"[\d一二三四五六七八九十两]+个?(?:工作日|自然日|日|天|周|个月|年)(?:内|以内|之内)", re.I)

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
    # Who carries a measure out: stated by the departments listed under it or a body its text puts
    # in charge, never by the issuer of the document (that is who wrote it).
    Detail("department",
           re.compile(r"\bwho (?:runs|leads|manages|handles|oversees|organi[sz]es|operates|implements|is (?:responsible|"
                      r"in charge)|will (?:run|lead|handle|implement|manage))\b|\b(?:which|what) (?:department|agency|"
                      r"bureau|authority|government body|office is responsible)\b|\bresponsible (?:department|agency|"
                      r"body)\b|哪个部门|哪个单位|哪个机构|哪个局|哪家单位|谁负责|由谁|谁来(?:管|负责|办|牵头)|谁管|谁牵头|"
                      r"负责部门|主管部门|牵头部门|责任部门|责任单位是", re.I),
           re.compile(r"牵头|负责|责任单位|责任部门|主管部门|领导小组|组长|\b(?:led by|responsible for|in charge of|"
                      r"(?:group )?leaders?|lead department|leading group|bureau|commission)\b", re.I)),
    # Until when a measure applies: stated by the validity its document gives, or a date in its text.
    Detail("validity",
           re.compile(r"\buntil when\b|\b(?:still )?valid\b|\bexpire[sd]?\b|\bin (?:force|effect)\b|有效期|是否有效|还有效|仍然有效|到期|到什么时候为止|为止|"
                      r"截止|失效|施行|执行到", re.I),
           _DATES),
    # When something happens: stated by a year, a month, a season or a recurring period.
    Detail("date",
           re.compile(r"\bwhen (?:is|are|will|does|do|was|did|can)\b|\bwhat (?:date|day|month|year)\b|什么时候|"
                      r"何时|哪天|哪一天|几号|几月|哪年|哪一年|啥时候|几时", re.I),
           _DATES),
    # Where a place is: stated by an address (the address kind's own signs) or a named location.
    Detail("location",
           re.compile(r"\bwhere (?:is|are) (?:it|they|the|that|this)\b(?!.*\b(?:apply|register|submit|file)\b)|"
                      r"(?:在|喺)(?:哪里|哪儿|哪|边度|什么地方|什么位置)[？?。\s]*$|位置在哪|具体位置", re.I),
           re.compile(r"\d+\s*号|[路街]\s*\d+|\b\d+\s+\w+\s+(?:road|street|avenue|lu)\b|地址|\baddress\b|"
                      r"位于|坐落|\blocated (?:at|in)\b", re.I)),
)


def asked_detail(folded: str) -> Detail | None:
    """The kind of detail the question asks for, if it asks for one of them."""
    return next((d for d in DETAILS if d.asked.search(folded)), None)


def states_detail(detail: Detail, text: str, departments: tuple[str, ...] = (), dated: bool = False) -> bool:
    """Whether a measure states the detail: its simplified text, the departments listed under it, and
    for a question of validity whether its document gives the dates it applies between (`dated`)."""
    if detail.kind == "department" and departments:
        return True
    if detail.kind == "validity" and dated:
        return True
    return bool(detail.stated.search(text))
