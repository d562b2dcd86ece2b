"""Questions for details policy measures seldom state: refused unless a retrieved measure states one."""

import pytest

from assistant.answering.details import asked_detail


@pytest.mark.parametrize(("question", "kind"), [
    ("What is the phone number of the district service centre?", "phone"),
    ("服务中心的电话是多少", "phone"),
    ("what time does the tax office open on saturday", "hours"),
    ("政务大厅几点开门", "hours"),
    ("What's the website address of the loans platform?", "web"),
    ("有没有下载链接", "web"),
    ("what is the address of the service hall", "address"),
    ("办事大厅地址在哪", "address"),
    ("Which form do I fill in for the voucher?", "form"),
    ("What VAT rate applies to consulting?", "tax_rate"),
    ("小规模纳税人征收率是多少", "tax_rate"),
    ("Who is the current director of the commerce bureau?", "official"),
    ("区长是谁", "official"),
    ("who runs it?", "department"),
    ("哪个部门负责？", "department"),
    ("when is it held?", "date"),
    ("until when is that valid?", "validity"),
    ("这个政策有效期到什么时候？", "validity"),
    ("这项措施到哪年为止", "validity"),
    ("这个大会什么时候开？", "date"),
    ("专窗喺边度？", "location"),  # as the gate folds "專窗喺邊度？"
    ("where is the service window?", "location"),
])
def test_a_question_for_a_detail_is_recognised(question, kind):
    detail = asked_detail(question)
    assert detail is not None and detail.kind == kind


@pytest.mark.parametrize("question", [
    "What support is there for small companies' loans?",
    "平台叫什么名字？",
    "How do I address a complaint about a late subsidy?",
    "静安区对研发有什么补贴",
    "Who can apply for the innovation voucher?",  # who is eligible, not who is in charge
    "Where can I apply for the subsidy?",  # how to apply, not where a place is
])
def test_a_policy_question_asks_for_no_detail(question):
    assert asked_detail(question) is None


@pytest.mark.parametrize(("kind", "stated", "silent"), [
    ("phone", "咨询热线：021-62345678。", "区企业服务中心提供一站式服务。"),
    ("hours", "Open on weekdays from 9:00 to 17:00.", "The centre offers one-stop service."),
    ("web", "Apply at https://example.gov.cn/apply.", "Apply through the online platform."),
    ("tax_rate", "小型微利企业减按20%的税率缴纳企业所得税。", "支持企业享受税收优惠政策。"),
    ("official", "联系人：王明同志。", "由区商务委负责。"),
    ("department", "由区商务委牵头负责。", "优化开店一件事集成服务。"),
    ("date", "2026年底前建成。", "举办第二届新质服务商大会。"),
    ("date", "Applications are made within three months after the exhibition.", "Applications are made to the bureau."),
    ("date", "活动结束后3个月内提出申请。", "向区商务局提出申请。"),
    ("location", "服务站位于南京西路1号。", "开设商事调解服务专窗。"),
])
def test_a_detail_is_stated_only_by_a_text_that_has_one(kind, stated, silent):
    from assistant.answering.details import DETAILS

    detail = next(d for d in DETAILS if d.kind == kind)
    assert detail.stated.search(stated) and not detail.stated.search(silent)


def test_the_gate_refuses_a_detail_no_retrieved_measure_states(fake_assistant):
    phone = fake_assistant.ask("What is the phone number of the Jing'an enterprise service centre?")
    assert phone.refused and phone.reason == "detail_not_stated" and phone.related
    assert "do not give this detail" in phone.answer
    plain = fake_assistant.ask("How does Jing'an protect intellectual property rights?")
    assert not plain.refused


def test_a_department_is_stated_by_the_departments_listed_under_a_measure():
    from assistant.answering.details import DETAILS, states_detail

    department = next(d for d in DETAILS if d.kind == "department")
    assert states_detail(department, "优化开店一件事集成服务。", ("区商务委",))
    assert not states_detail(department, "优化开店一件事集成服务。", ())


def test_validity_is_stated_by_the_document_when_the_measure_gives_no_date():
    from assistant.answering.details import DETAILS, states_detail

    validity = next(d for d in DETAILS if d.kind == "validity")
    assert states_detail(validity, "We will support CVC institutions.", (), dated=True)
    assert not states_detail(validity, "We will support CVC institutions.", (), dated=False)
