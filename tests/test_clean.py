"""Normalisation on lines copied from the seed documents: noise goes, substance stays."""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from pathlib import Path

import pytest

from assistant.corpus.clean import (
    clean_lines,
    has_cjk,
    looks_wrapped,
    normalize_for_index,
    restore_cjk_punctuation,
    strip_invisible,
    strip_pinyin,
    to_simplified,
)

SEEDS = Path(__file__).resolve().parents[1] / "seeds"

# seeds/003 (Xuhui): traditional script with pinyin readings glued after some characters.
XUHUI = """區(qū)政府各委、辦、局,各街道、華涇鎮(zhèn),各有關單位:

  經(jīng)區(qū)政府同意,現(xiàn)將《徐匯區(qū)加快打造國際一流營商環(huán)境行動方案(2026年)》印發(fā)給你們,請認真按照執(zhí)行。

  8.知識產(chǎn)權(quán)

  依托“全球1小時響應計劃”“MTCC徐匯協(xié)議”,提升徐匯涉外法律服務品牌顯示度。優(yōu)化12345市民服務熱線涉企訴求分辦機制。

  完善企業(yè)“走出去”綜合服務平臺(徐匯)服務點運行機制。
"""

# seeds/004 (Shanghai): PDF extraction with full-width digits, a letter-spaced letterhead, lines broken at
# the page width and a page marker in the middle of a sentence.
SHANGHAI = """上 海 市 人 民 政 府 办 公 厅 文 件

沪府办发 〔２０２４〕１号

上海市人民政府办公厅关于印发

«上海市坚持对标改革\u3000持续打造国际一流

营商环境行动方案»的通知

各区人民政府,市政府各委、办、局,各有关单位:

«上海市坚持对标改革\u3000持续打造国际一流营商环境行动方

案»已经市政府同意,现印发给你们,请认真按照执行.

２０２４年１月１３日

(此件公开发布)
 上海市坚持对标改革

持续打造国际一流营商环境行动方案

\u3000\u3000率先打造市场化、法治化、国际化一流营商环境,是党中央、国

务院交给上海的重要任务.２０２４年,上海坚持以习近平新时代中

国特色社会主义思想为指导,深入贯彻落实习近平总书记考察上

海重要讲话精神和对上海工作的重要指示要求,坚持系统集成、持

续迭代升级,以市场化为鲜明主线、法治化为基础保障、国际化为

重要标准,为更好地服务上海“五个中心”建设和城市核心功能提

升,持续打造贸易投资便利、行政效率高效、政务服务规范、法治体

系完善的国际一流营商环境,制定本方案.

一、对标改革提升行动

(一)市场准入.系统提升“上海企业登记在线”服务品质,同

步集成个体工商户和农民专业合作社登记业务.全面落实名称申

报承诺制,完善核名争议解决机制.建立企业住所标准化登记信

息库,依托数据核验简化企业住所登记材料.结合城乡社区服务

体系建设,为居民服务业个体工商户提供登记地.规范集中登记

地认定和管理,引导集中登记地企业守法经营.根据国家受益所

有人信息备案制度安排,适时开展受益所有人信息备案.依托全

国统一电子营业执照系统及“经营主体身份码”,全面推广“一企、
—２—



一照、一码”应用,推出更多前瞻性、引领性、普惠性创新应用场景.

探索推动企业登记信息变更后在有关部门业务系统中自动更新.

(二)获取经营场所.聚焦施工许可与规划用地审批衔接、中

介服务、区域评估、用地清单制等重点领域,深化一体化改革.巩

固规划资源“多审合一、多证合一、多测合一、多验合一”和不动产

登记改革成效.深化拓展建筑师负责制、企业投资项目承诺制等
"""

# seeds/001 (Jing'an industry, English): a measure printed with its title and the departments line.
JINGAN = """(December 9, 2024)
JDDRC D (2024) No.18
I. Overall Requirements
1. Focusing on key areas. In line with the industrial development foundation of Jing’an District, we will further concentrate high-quality industrial elements, giving priority support to the building of the modern industrial system of “(2+2)+(3+6)+(4+5)” in this Municipality.
(Responsible department: Jing’an District Talent Bureau)
"""

# seeds/002 (Zhangjiang, English): figures that must survive cleaning.
ZHANGJIANG = """By 2026, the regional gross product shall reach 175 billion yuan, achieving an average annual growth of 5%.
3. Achieve in three-year the reserve of 1 million square meters
"""


def test_pinyin_readings_are_stripped_and_display_keeps_traditional():
    lines = clean_lines(XUHUI)
    text = "\n".join(lines)
    assert "(qū)" not in text and "(zhèn)" not in text and "(jīng)" not in text and "(chǎn)" not in text
    assert lines[0].startswith("區政府各委、辦、局")  # display form keeps the original script
    assert "華涇鎮" in lines[0]
    assert "8.知識產權" in lines


def test_pinyin_rule_leaves_real_parentheses_alone():
    kept = "完善企業“走出去”綜合服務平臺(徐匯)服務點運行機制"
    assert strip_pinyin(kept) == kept
    assert strip_pinyin("行動方案(2026年)") == "行動方案(2026年)"
    assert strip_pinyin("處長(科長)講政策") == "處長(科長)講政策"
    assert strip_pinyin("Zone (2025-2026) (I) (a)") == "Zone (2025-2026) (I) (a)"  # no Chinese before them
    assert strip_pinyin("產(chǎn)業(yè)") == "產業"


def test_index_form_is_simplified_lower_case_and_nfkc():
    assert normalize_for_index("知識產(chǎn)權") == "知识产权"
    assert normalize_for_index("營商環(huán)境") == "营商环境"
    assert normalize_for_index("２０２４年１月１３日") == "2024年1月13日"
    assert normalize_for_index("Jing’an  District\nIP") == "jing'an district ip"
    # Display form of the same line stays traditional: only the index form is converted.
    display = clean_lines("8.知識產(chǎn)權\n")
    assert display == ["8.知識產權"]
    assert normalize_for_index(display[0]) == "8.知识产权"


def test_to_simplified_passes_other_scripts_through():
    assert to_simplified("Intellectual Property (IP)") == "Intellectual Property (IP)"
    assert to_simplified("徐匯區") == "徐汇区"


def test_page_markers_dropped_and_pdf_lines_rejoined():
    lines = clean_lines(SHANGHAI)
    text = "\n".join(lines)
    assert not any(re.fullmatch(r"[—–\-]+\s*\d+\s*[—–\-]+", ln) for ln in lines)
    assert "—2—" not in text and "—２—" not in text
    # A sentence broken at the page width, and one broken across the page marker, are whole again.
    assert any("全面落实名称申报承诺制" in ln for ln in lines)
    assert any("全面推广“一企、一照、一码”应用" in ln for ln in lines)
    assert any("是党中央、国务院交给上海的重要任务" in ln for ln in lines)
    # Headings are never glued to the line before them.
    assert "一、对标改革提升行动" in lines
    assert any(ln.startswith("(一)市场准入") for ln in lines)
    assert any(ln.startswith("(二)获取经营场所") for ln in lines)


def test_letterhead_full_width_digits_and_punctuation():
    lines = clean_lines(SHANGHAI)
    assert lines[0] == "上海市人民政府办公厅文件"
    assert "2024年1月13日" in lines
    assert any(re.fullmatch(r"沪府办发\s*〔2024〕1号", ln) for ln in lines)
    assert not any(re.search("[０-９]", ln) for ln in lines)
    # ASCII punctuation inside Chinese text is restored to full-width (NFKC maps it the other way).
    assert "各区人民政府，市政府各委、办、局，各有关单位：" in lines
    assert "«" not in "".join(lines) and "《上海市坚持对标改革" in "".join(lines)


def test_restore_punctuation_does_not_touch_numbers():
    assert restore_cjk_punctuation("升级“企事快办2.0版”") == "升级“企事快办2.0版”"
    assert restore_cjk_punctuation("请认真按照执行.") == "请认真按照执行。"


def test_looks_wrapped_needs_many_lines_of_one_width():
    assert not looks_wrapped(["一二三四五六七八九十一二三四五六七八九十"] * 5)
    assert looks_wrapped(["一二三四五六七八九十一二三四五六七八九十"] * 25)
    assert not looks_wrapped([f"line of varying width {'x' * i}" for i in range(30)])


def test_english_lines_are_kept_whole():
    lines = clean_lines(JINGAN)
    assert lines[:3] == ["(December 9, 2024)", "JDDRC D (2024) No.18", "I. Overall Requirements"]
    assert lines[3].startswith("1. Focusing on key areas. In line with")
    assert "“(2+2)+(3+6)+(4+5)”" in lines[3]
    assert lines[4] == "(Responsible department: Jing’an District Talent Bureau)"


def test_invisible_characters_removed():
    assert strip_invisible("知识\u200b产权\ufeff\u202e") == "知识产权"
    assert strip_invisible("a\tb\nc\x00") == "a\tb\nc"
    assert normalize_for_index("pat\u00adent") == "patent"


@pytest.mark.parametrize("excerpt", [XUHUI, SHANGHAI, JINGAN, ZHANGJIANG], ids=["xuhui", "shanghai", "jingan", "zhangjiang"])
def test_nothing_of_substance_is_lost_in_excerpts(excerpt):
    _assert_substance_kept(excerpt)


@pytest.mark.parametrize("path", sorted(SEEDS.glob("*.txt")), ids=lambda p: p.name[:3])
def test_nothing_of_substance_is_lost_in_seed_files(path):
    _assert_substance_kept(path.read_text(encoding="utf-8"))


def _assert_substance_kept(raw: str) -> None:
    """Every Chinese character, every word and every number of the raw text is in the cleaned text
    (page numbers and pinyin readings excepted)."""
    nfkc = unicodedata.normalize("NFKC", raw)
    body = "\n".join(ln for ln in nfkc.split("\n") if not re.fullmatch(r"\s*[—–\-]+\s*\d{1,3}\s*[—–\-]+\s*", ln))
    body = strip_pinyin(body)
    cleaned = "\n".join(clean_lines(raw))
    cjk = re.compile("[\u3400-\u4dbf\u4e00-\u9fff]")
    assert Counter(cjk.findall(cleaned)) == Counter(cjk.findall(body))
    flat = re.sub(r"\s+", "", cleaned)
    for number in re.findall(r"\d+(?:\.\d+)?", body):
        assert number in flat, number
    if not has_cjk(body):
        assert cleaned.split() == body.split()
