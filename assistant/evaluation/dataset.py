"""The evaluation set: versioned JSONL items with gold measures and key facts (see eval/README.md)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigError

TYPES = ("single", "cross_lingual", "two_measure", "followup", "expired", "unanswerable_district",
         "unanswerable_year", "unanswerable_amount", "unanswerable_topic", "off_topic", "injection")


@dataclass(frozen=True)
class EvalItem:
    id: str
    type: str
    language: str  # the question's script: "en", "zh", "zh-hant"
    question: str
    answerable: bool
    gold: tuple[str, ...] = ()
    key_facts: tuple[str, ...] = ()
    history: tuple[tuple[str, str], ...] = ()
    expect_expired: bool = False
    overlap: str = "medium"
    quick: bool = False
    injected: str = ""
    extra: dict = field(default_factory=dict, compare=False)

    @property
    def answer_language(self) -> str:
        return "zh" if self.language.startswith("zh") else "en"


def load_items(path: Path, *, quick: bool = False, valid_ids: set[str] | None = None) -> list[EvalItem]:
    """Read and check the set; every problem is reported with its line number."""
    if not path.exists():
        raise ConfigError(f"evaluation set {path} not found")
    items: list[EvalItem] = []
    seen: set[str] = set()
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            item = EvalItem(
                id=str(raw["id"]), type=raw["type"], language=raw["language"], question=raw["question"],
                answerable=bool(raw["answerable"]), gold=tuple(raw.get("gold", ())),
                key_facts=tuple(raw.get("key_facts", ())),
                history=tuple(tuple(turn) for turn in raw.get("history", ())),
                expect_expired=bool(raw.get("expect_expired", False)), overlap=raw.get("overlap", "medium"),
                quick=bool(raw.get("quick", False)), injected=raw.get("injected", ""),
                extra={k: v for k, v in raw.items() if k not in EvalItem.__dataclass_fields__})
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise ConfigError(f"{path}:{lineno}: not a valid evaluation item ({exc})") from exc
        if item.type not in TYPES:
            raise ConfigError(f"{path}:{lineno}: unknown type {item.type!r}")
        if item.id in seen:
            raise ConfigError(f"{path}:{lineno}: duplicate id {item.id}")
        if valid_ids is not None and (missing := [g for g in item.gold if g not in valid_ids]):
            raise ConfigError(f"{path}:{lineno}: gold measure(s) not in the index: {missing}")
        seen.add(item.id)
        items.append(item)
    return [i for i in items if i.quick] if quick else items


def is_cross_lingual(item: EvalItem, doc_language: dict[str, str]) -> bool:
    """The question's language differs from the language of a gold measure's document."""
    return any(doc_language.get(g.split("#")[0]) not in (None, item.answer_language) for g in item.gold)
