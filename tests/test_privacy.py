"""Redaction of personal data before anything is stored: each pattern on its own, through the
consultation records, and the policy wording it must leave alone."""

from __future__ import annotations

import dataclasses

import pytest

from assistant.records import Records

# (text, what must not survive, the placeholder it becomes)
PERSONAL = [
    ("我叫张伟，想咨询知识产权补贴", "张伟", "[name]"),
    ("联系人：李娜，电话见下", "李娜", "[name]"),
    ("姓名: 王小明", "王小明", "[name]"),
    ("我是陈静，公司在静安区", "陈静", "[name]"),
    ("联系人刘洋 负责申报", "刘洋", "[name]"),
    ("请转告赵先生", "赵先生", "[name]"),
    ("My name is John Smith and I run a cafe", "John Smith", "[name]"),
    ("银行卡6222021234567890123", "6222021234567890123", "[card]"),
    ("卡号 6222 0212 3456 7890 123 可以吗", "3456 7890", "[card]"),
    ("card 4111-1111-1111-1111", "4111-1111", "[card]"),
    ("统一社会信用代码91310101MA1FPX1234", "91310101MA1FPX1234", "[credit_code]"),
    ("信用代码 92310000L12345678X 的个体户", "92310000L12345678X", "[credit_code]"),
    ("手机１３８１２３４５６７８", "１２３４５６７８", "[phone]"),
    ("手机 １３８ １２３４ ５６７８", "５６７８", "[phone]"),
    ("call 138.1234.5678 please", "1234.5678", "[phone]"),
    ("call 138 1234 5678 please", "1234 5678", "[phone]"),
    ("电话+86 138-1234-5678", "1234-5678", "[phone]"),
    ("(+86)13812345678", "13812345678", "[phone]"),
    ("座机021-62345678", "62345678", "[phone]"),
    ("座机(021) 6234 5678", "6234 5678", "[phone]"),
    ("0755-8888 6666转123", "8888 6666", "[phone]"),
    ("UK office +44 20 7946 0958", "7946 0958", "[phone]"),
    ("US office +1 (415) 555-0100", "555-0100", "[phone]"),
    ("身份证110105491231002", "110105491231002", "[id]"),
    ("身份证11010519491231002X", "11010519491231002X", "[id]"),
    ("护照号E12345678", "E12345678", "[passport]"),
    ("passport no. G12345678", "G12345678", "[passport]"),
    ("my passport EA1234567", "EA1234567", "[passport]"),
    ("passport number 533380006 (UK)", "533380006", "[passport]"),
    ("邮箱li＠example.com", "li＠example", "[email]"),
    ("邮箱li@example．com谢谢", "li@example", "[email]"),
    ("mail josé.garcía@correo.es", "josé.garcía", "[email]"),
    ("写信到用户@例子.广告", "用户@例子", "[email]"),
    ("почта иван@почта.рф", "иван@почта", "[email]"),
    ("mail li@example.cn, thanks", "li@example.cn", "[email]"),
]

# Policy questions and wording that must come through unchanged.
UNCHANGED = [
    "2025年静安区对小微企业的补贴是多少？",
    "沪府办规〔2024〕12号第3条怎么规定的？",
    "请拨打12345热线",
    "补贴最高500万元，期限至2026-12-31",
    "What support is there for protecting intellectual property in Jing'an?",
    "我是一家小微企业的负责人",
    "我是外资企业，能申请吗？",
    "张江高科技园区有什么政策",
    "注册资本1000万元，员工120人，2024年1月1日成立",
    "The fund gives up to 2,000,000 yuan from 2025-01-01 to 2027-12-31.",
    "Is there support under Measure 12 of the 2024 plan?",
    "王府井和徐汇区的政策有什么不同",
    "联系人制度是什么",
]


@pytest.fixture
def stored(tmp_path, fake_assistant):
    """Store a question through the consultation records and read back what was kept."""
    records = Records(tmp_path / "r.sqlite3")
    base = fake_assistant.ask("What support is there for protecting intellectual property in Jing'an?")

    def store(text: str) -> str:
        ref = records.add(dataclasses.replace(base, question=text, rewritten_query=text), session_id="s")
        rec = records.get(ref)
        assert rec.question == rec.rewritten_query
        return rec.question

    return store


@pytest.mark.parametrize("text, leak, placeholder", PERSONAL, ids=[p[0][:24] for p in PERSONAL])
def test_personal_data_is_redacted_before_it_is_stored(stored, text, leak, placeholder):
    kept = stored(text)
    assert leak not in kept and placeholder in kept, kept


@pytest.mark.parametrize("text", UNCHANGED)
def test_policy_wording_is_left_alone(stored, text):
    assert stored(text) == text


def test_feedback_comments_are_redacted(tmp_path, fake_assistant):
    records = Records(tmp_path / "r.sqlite3")
    ref = records.add(fake_assistant.ask("What support is there for patents?"), session_id="s")
    records.set_feedback(ref, -1, "call me on 138 1234 5678, 张先生")
    assert records.get(ref).feedback_comment == "call me on [phone], [name]先生"
    records.set_comment(ref, "卡号6222021234567890123")
    assert records.get(ref).feedback_comment == "卡号[card]"
