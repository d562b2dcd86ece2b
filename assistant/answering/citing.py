"""How an answer names its sources: the citations shown, the note on an expired document, and a
measure's name in the answer's language."""

from __future__ import annotations

import re
from datetime import date

from ..types import Citation
from .facts import cn_to_int
from .verify import Evidence


def citations(evidence: list[Evidence] | tuple[Evidence, ...], display: dict[int, int], today: date,
              quoted: dict[int, list[str]] | None = None) -> list[Citation]:
    """The citations of the evidence numbers a reply used (`display`: evidence n -> number shown;
    `quoted`: evidence n -> the measure's sentences quoted in the answer)."""
    by_n = {e.n: e for e in evidence}
    quoted = quoted or {}
    out = []
    for shown, n in sorted(display.items(), key=lambda kv: kv[1]):
        e = by_n[shown]
        out.append(Citation(n=n, measure=e.measure, document=e.document, expired=e.document.expired(today),
                            quoted=tuple(quoted.get(shown, ()))))
    return out


def expiry_notes(cited: list[Citation], language: str) -> str:
    """A note for each cited document that no longer applies: expired, or replaced by a newer version."""
    notes = []
    for c in cited:
        doc = c.document.doc_number or c.document.title
        newer = c.document.superseded_by
        if newer:
            if language == "zh":
                notes.append(f"注意：[{c.n}]所依据的文件（{doc}）已被新版本（{newer}）取代，现行规定以新版本为准。")
            else:
                notes.append(f"Note: [{c.n}] comes from {doc}, which has been superseded by a newer version "
                             f"({newer}); the newer version is the one in force.")
        if not c.expired:
            continue
        until = c.document.valid_until.isoformat()
        if language == "zh":
            notes.append(f"注意：[{c.n}]所依据的文件（{doc}）有效期至{until}，已过期，请向发文部门确认是否仍然适用。")
        else:
            notes.append(f"Note: [{c.n}] comes from {doc}, which was valid until {until} and has expired; "
                         f"check with the issuing department whether it still applies.")
    return " ".join(notes)


def label(e: Evidence, language: str) -> str:
    """The measure's name in the answer's language: the document's short title there, and its number."""
    if e.document.language == language:
        return e.measure.label
    if language == "zh":
        return f"{e.document.short_title_zh}第{e.measure.number}项"
    # "徐汇区…方案 第11项 创业支持" -> "measure 11"; "上海市…方案 四(三) 信用监管" -> "measure 4(3)"
    place = e.measure.label.removeprefix(e.document.short_title_zh).split()
    number = place[0] if place else e.measure.number
    kind = "Article" if number.endswith(("条", "條")) else "measure"  # "第三条" -> "Article 3"
    number = re.sub(r"[零〇一二两三四五六七八九十百]+", lambda m: str(cn_to_int(m.group(0)) or m.group(0)),
                    number.removeprefix("第").removesuffix("项").removesuffix("条").removesuffix("條"))
    return f"{e.document.short_title_en}, {kind} {number}"
