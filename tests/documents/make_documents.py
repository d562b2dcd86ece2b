"""Writes the binary test documents (PDF, DOCX) from the texts below. Run from the repository root:

    .venv/bin/python tests/documents/make_documents.py

The files are committed; this script is how they were made (fpdf2 for the PDF, python-docx for the
DOCX), so a change to a text here is a change to its file after a re-run.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent

RIVERSIDE = """\
Riverside District People's Government
RDPG [2025] No. 21
Several Measures of Riverside District on Supporting Advanced Manufacturing
(Adopted at the 18th Executive Meeting of the District People's Government on November 4, 2025)
These Measures are formulated to build Riverside District into a base of advanced manufacturing and to support enterprises in expanding production, upgrading technology and going digital.
I. Expanding Production Capacity
1. Supporting new projects. For new manufacturing projects with a fixed-asset investment of more than RMB 50 million, the District shall grant a subsidy of 5% of the investment in production equipment, up to RMB 10 million per project.
2. Supporting capacity expansion. Enterprises whose output value grows by more than 20% year on year and exceeds RMB 100 million shall receive an award of RMB 500,000.
3. Guaranteeing industrial land. Key manufacturing projects shall be given priority in land supply, and the land may be leased first and transferred later, with a lease term of up to 10 years.
II. Technological Upgrading
4. Technical transformation. Enterprises that carry out technical transformation with equipment investment of more than RMB 5 million shall receive a subsidy of 10% of the equipment investment, up to RMB 3 million.
5. First sets of major equipment. Enterprises whose products are recognised as the first set of major technical equipment at national or municipal level shall receive a one-off award of 30% of the sales value of the first set, up to RMB 2 million.
6. Industrial design. Enterprises newly recognised as national industrial design centres shall receive an award of RMB 1 million; municipal ones, RMB 300,000.
III. Digital and Intelligent Manufacturing
7. Smart factories. Enterprises recognised as municipal smart factories shall receive an award of RMB 1 million; those recognised as digital workshops, RMB 300,000.
8. Industrial internet. Enterprises that build an industrial internet platform serving more than 100 enterprises shall receive a subsidy of 20% of the platform investment, up to RMB 2 million.
IV. Supplementary Provisions
9. Application and review. Enterprises apply through the Riverside Enterprise Service Platform from March to May each year. The District Economy Commission reviews the applications together with the District Finance Bureau.
These Measures shall come into effect on January 1, 2026 and be valid for three years.
Riverside District People's Government
November 20, 2025
"""

QIYUN_PARAGRAPHS = [
    "江澜市栖云区科学技术委员会 江澜市栖云区财政局",
    "栖科发〔2026〕7号",
    "关于印发《栖云区科技创新券实施细则》的通知",
    "各街道办事处，区各有关单位，各科技型企业：",
    "为降低中小企业创新成本，经区政府同意，现将《栖云区科技创新券实施细则》印发给你们，请认真遵照执行。",
    "江澜市栖云区科学技术委员会",
    "2026年4月20日",
    "栖云区科技创新券实施细则",
    "一、总则",
    "（一）目的依据",
    "为引导中小企业利用科技服务资源开展研发活动，降低企业创新成本，根据《江澜市科技创新券管理办法》，制定本细则。",
    "（二）适用范围",
    "本细则适用于在栖云区注册登记、具有独立法人资格的科技型中小企业和高新技术企业。",
    "二、支持内容",
    "（一）创新券额度",
    "1.科技型中小企业",
    "入库的科技型中小企业每年可申领创新券最高20万元。",
    "2.高新技术企业",
    "有效期内的高新技术企业每年可申领创新券最高50万元。",
    "（二）使用范围",
    "创新券可用于向服务机构购买以下服务：",
    "（1）检验检测和认证服务；",
    "（2）研发设计和中试服务；",
    "（3）知识产权分析评议服务。",
    "（三）兑付比例",
    "企业使用创新券购买服务的，按照服务合同金额的50%予以兑付，单笔合同兑付最高10万元。（责任单位：区科委、区财政局）",
    "三、申领程序",
    "（一）申请",
    "企业每年1月至3月通过“栖云科创”平台提交申领材料，包括营业执照、上年度财务报表和研发计划。",
    "（二）审核",
    "区科委在收到申请后15个工作日内完成审核，并在区政府网站公示5个工作日。",
    "四、监督管理",
    "对弄虚作假、套取资金的企业和服务机构，取消其资格，追回已兑付资金，三年内不得申报区级科技项目。",
    "五、附则",
    "本细则自2026年5月1日起实施，有效期为两年。",
]


def make_pdf(path: Path) -> None:
    from fpdf import FPDF

    class Doc(FPDF):
        def footer(self) -> None:  # the page numbers a printed document carries
            self.set_y(-18)
            self.set_font("Helvetica", size=10)
            self.cell(0, 10, f"- {self.page_no()} -", align="C")

    pdf = Doc(format="A4")
    pdf.set_auto_page_break(auto=True, margin=25)
    pdf.set_margins(25, 25, 25)
    pdf.add_page()
    pdf.set_font("Helvetica", size=12)
    for paragraph in RIVERSIDE.splitlines():
        pdf.multi_cell(0, 7, paragraph, align="L")
        pdf.ln(2)
    pdf.set_creation_date(datetime(2025, 11, 20, tzinfo=UTC))  # the same bytes on every run
    pdf.output(str(path))


def make_docx(path: Path) -> None:
    from docx import Document

    doc = Document()
    for text in QIYUN_PARAGRAPHS:
        doc.add_paragraph(text)
    doc.add_paragraph("附件：栖云区科技创新券受理窗口")
    table = doc.add_table(rows=2, cols=2)
    table.cell(0, 0).text = "联系部门"
    table.cell(0, 1).text = "联系电话"
    table.cell(1, 0).text = "区科委创新服务科"
    table.cell(1, 1).text = "0571-8888 1234"
    doc.add_paragraph("江澜市栖云区科学技术委员会")
    doc.add_paragraph("2026年4月20日印发")
    doc.core_properties.created = datetime(2026, 4, 20, tzinfo=UTC)
    doc.save(str(path))


if __name__ == "__main__":
    make_pdf(HERE / "riverside-manufacturing.pdf")
    make_docx(HERE / "qiyun-innovation-vouchers.docx")
    print("written:", ", ".join(p.name for p in sorted(HERE.glob("*.pdf")) + sorted(HERE.glob("*.docx"))))
