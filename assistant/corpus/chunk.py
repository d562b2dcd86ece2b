"""Measures -> chunks: one per measure, long ones split on sentence boundaries with the header repeated."""

from __future__ import annotations

from ..types import Chunk, Document, Measure
from .clean import has_cjk, normalize_for_index
from .sentences import measure_sentences as split_sentences

# What the bundled e5 model sees well within its 512-token window, in characters.
MAX_CHARS_EN = 1600
MAX_CHARS_ZH = 480

def header(measure: Measure) -> str:
    return measure.label


def _parts(text: str, limit: int) -> list[str]:
    if len(text) <= limit:
        return [text]
    parts: list[str] = []
    current = ""
    for sentence in split_sentences(text):
        if current and len(current) + len(sentence) + 1 > limit:
            parts.append(current)
            current = ""
        current = f"{current} {sentence}".strip() if not has_cjk(sentence) else current + sentence
    if current:
        parts.append(current)
    return parts


def chunk_measures(document: Document, measures: list[Measure], bridge: dict[str, str] | None = None) -> list[Chunk]:
    """One chunk per measure (more for long ones). `bridge` maps measure_id to bilingual title and
    summary text, indexed with the measure so that a question in the other language finds it."""
    bridge = bridge or {}
    limit = MAX_CHARS_ZH if document.language == "zh" else MAX_CHARS_EN
    out: list[Chunk] = []
    for m in measures:
        departments = "; ".join(m.departments)
        extra = " ".join(x for x in (" / ".join(m.section_path), departments, bridge.get(m.measure_id, "")) if x)
        for i, part in enumerate(_parts(m.text, limit), 1):
            text = f"{header(m)}\n{part}"
            out.append(Chunk(
                chunk_id=m.measure_id if i == 1 else f"{m.measure_id}~{i}",
                measure_id=m.measure_id,
                doc_id=m.doc_id,
                text=text,
                index_text=normalize_for_index(f"{text}\n{extra}"),
            ))
    return out
