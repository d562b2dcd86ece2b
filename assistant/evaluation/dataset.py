"""The evaluation set: versioned JSONL items with gold measures and key facts (see eval/README.md).

Every item belongs to one split, fixed in the file: `calibration` (what thresholds, margins, glossary
entries and prompt wording may be chosen on) or `test` (never tuned on; what the CI gate checks)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigError

TYPES = ("single", "cross_lingual", "two_measure", "followup", "expired", "unanswerable_district",
         "unanswerable_year", "unanswerable_amount", "unanswerable_topic", "off_topic", "injection",
         "colloquial", "profile", "followup_switch", "followup_about", "not_held", "unlawful")
FOLLOWUP_TYPES = ("followup", "followup_switch", "followup_about")
# Refused by what the request asks for, not by how well the corpus covers it: left out of negative
# rejection and of the gate's calibration.
REFUSED_BY_INTENT = ("injection", "unlawful")
SPLITS = ("calibration", "test")
DEFAULT_SUITE = "main"


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
    # An item without a split is a test item: nothing unlabelled is ever tuned on.
    split: str = "test"
    suite: str = DEFAULT_SUITE
    set_version: int = 1
    extra: dict = field(default_factory=dict, compare=False)

    @property
    def answer_language(self) -> str:
        return "zh" if self.language.startswith("zh") else "en"

    @property
    def negative(self) -> bool:
        """Unanswerable from the corpus: the honest answer is a refusal (negative rejection counts it)."""
        return not self.answerable and self.type not in REFUSED_BY_INTENT

    @property
    def followup_kind(self) -> str | None:
        """`followup`, `switch:district|level|topic` or `about:who|department|until_when|how_much|…`."""
        if self.type == "followup_switch":
            return f"switch:{self.extra.get('switch', '?')}"
        if self.type == "followup_about":
            return f"about:{self.extra.get('asks', '?')}"
        return "followup" if self.type == "followup" else None


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
                split=raw.get("split", "test"), suite=raw.get("suite", DEFAULT_SUITE),
                set_version=int(raw.get("set_version", 1)),
                extra={k: v for k, v in raw.items() if k not in EvalItem.__dataclass_fields__})
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"{path}:{lineno}: not a valid evaluation item ({exc})") from exc
        if item.type not in TYPES:
            raise ConfigError(f"{path}:{lineno}: unknown type {item.type!r}")
        if item.split not in SPLITS:
            raise ConfigError(f"{path}:{lineno}: split must be one of {', '.join(SPLITS)}, not {item.split!r}")
        if item.quick and item.split != "test":
            raise ConfigError(f"{path}:{lineno}: {item.id} is quick but in the {item.split} split: "
                              "the CI gate checks test items only")
        if item.id in seen:
            raise ConfigError(f"{path}:{lineno}: duplicate id {item.id}")
        seen.add(item.id)
        items.append(item)
    if valid_ids is not None:
        check_gold(items, valid_ids, path)
    return [i for i in items if i.quick] if quick else items


def check_gold(items: list[EvalItem], valid_ids: set[str], path: Path | str = "the set") -> None:
    """Every gold measure is in the index the items run on (a suite may bring a library of its own)."""
    for item in items:
        if missing := [g for g in item.gold if g not in valid_ids]:
            raise ConfigError(f"{path}: {item.id}: gold measure(s) not in the index: {missing}"
                              + (f" (suite {item.suite}: run it with --suite {item.suite})"
                                 if item.suite != DEFAULT_SUITE else ""))


def select(items: list[EvalItem], *, split: str | None = None, suite: str | None = None,
           ids: Iterable[str] | None = None, types: Iterable[str] | None = None,
           set_version: int | None = None) -> list[EvalItem]:
    """The items matching every filter given (None: no filter); unknown ids are an error."""
    out = items
    if ids is not None:
        wanted = list(dict.fromkeys(ids))
        known = {i.id for i in items}
        if missing := [x for x in wanted if x not in known]:
            raise ConfigError(f"no such item(s) in the set: {', '.join(missing)}")
        out = [i for i in out if i.id in set(wanted)]
    if split is not None:
        out = [i for i in out if i.split == split]
    if suite is not None:
        out = [i for i in out if i.suite == suite]
    if types is not None:
        out = [i for i in out if i.type in set(types)]
    if set_version is not None:
        out = [i for i in out if i.set_version == set_version]
    return out


def calibration_items(items: list[EvalItem]) -> list[EvalItem]:
    """What any tuning may read: the calibration split, never a test item."""
    chosen = [i for i in items if i.split == "calibration"]
    if not chosen:
        raise ConfigError("no calibration items in this set: thresholds are chosen on the calibration split only")
    return chosen


def is_cross_lingual(item: EvalItem, doc_language: dict[str, str]) -> bool:
    """The question's language differs from the language of a gold measure's document."""
    return any(doc_language.get(g.split("#")[0]) not in (None, item.answer_language) for g in item.gold)
