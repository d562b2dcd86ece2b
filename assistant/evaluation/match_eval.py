"""The health check's evaluation: hand-written enterprise profiles with gold levels, scored per split.

Gold comes from `eval/measure-annotations.json` (what each measure offers and to whom, written by
reading its text) and each profile's `gold_facts` (what a person reads off the profile), combined by
`gold_levels` below; `eval/profiles.jsonl` holds the result, and a test keeps the two in step. The
matcher's own labels take no part in the gold.

Metrics (per split; `test` is never used for tuning):
- precision@5 of "applies": of the first five measures offered as applying, the share that apply
  (a profile offered nothing counts 1 when nothing applies, 0 otherwise);
- recall@10 of "applies": of the measures that apply, the share among the first ten offered
  (out of at most ten; profiles where nothing applies are skipped);
- level accuracy: over the gold measures (those that apply or may apply), the share given the gold
  level; level agreement, stricter: over every measure either side places in applies or may apply
  (a measure not listed is "does not apply"), so a measure offered wrongly counts against it too;
- conditions cited correctly: conditions shown with applies / may apply whose quote is the
  measure's own words (the document's title for the district);
- unsafe offers: measures of an expired document, or outside the enterprise's district, offered as
  applying or maybe applying (must be 0);
- confident with unknown: "applies" where the gold says "may apply" because a field the measure's
  conditions need is unknown, or while the district or the needs are unknown, or with a condition
  shown as unknown (must be 0); reported beside it, "applies" where the gold says "may apply"
  because the text names eligibility it does not spell out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

PROFILES = Path("eval/profiles.jsonl")
ANNOTATIONS = Path("eval/measure-annotations.json")
SPLITS = ("calibration", "test")
TARGETS = {"precision@5": 0.80, "recall@10": 0.90, "level_accuracy": 0.85, "unsafe_offers": 0,
           "confident_with_unknown": 0}


# ---------------------------------------------------------------- gold
def _alt(alternatives: list[list[str]], g: dict) -> bool | None:
    """Any one of [category, key] suffices; None when none holds and one cannot be told."""
    states = []
    for category, key in alternatives:
        if category == "size":
            states.append(None if g["size"] is None else g["size"] == key)
        elif category == "stage":
            states.append(g["startup"] if key == "startup" else (True if g.get("growth") else None))
        elif category == "qualification":
            states.append(None if g["qualifications"] is None else key in g["qualifications"])
        elif category == "type":
            states.append(True if key in g["types"] else (False if g["types_known"] else None))
        elif category == "industry":
            states.append(None if g["industries"] is None else key in g["industries"])
    if any(s is True for s in states):
        return True
    return None if any(s is None for s in states) else False


def _and(states: list[bool | None]) -> bool | None:
    if any(s is False for s in states):
        return False
    return None if any(s is None for s in states) else True


def gold_levels(g: dict, annotations: dict) -> dict[str, str]:
    """measure_id -> applies / may_apply for every annotated measure that is not does_not_apply."""
    return {m: level for m, (level, _) in gold_causes(g, annotations).items()}


def gold_causes(g: dict, annotations: dict) -> dict[str, tuple[str, str]]:
    """measure_id -> (level, why): why a measure may apply is "field" (a field it needs is
    unknown) or "unstated" (the text names eligibility it does not spell out)."""
    out = {}
    needs = set(g["needs"]) if g["needs"] else None
    for mid, ann in annotations["measures"].items():
        doc = mid.split("#", 1)[0]
        if doc in annotations["expired_documents"]:
            continue
        area = ann.get("districts") or annotations["document_districts"][doc]
        district = None if g["district"] is None else g["district"] in area
        kinds = [k for k in ann["kinds"] if needs is None or k in needs]
        if district is False or not kinds:
            continue
        best: bool | None = False
        field_unknown = needs is None or district is None
        for k in kinds:
            parts = [district]
            if ann.get("restrict"):
                parts.append(_alt(ann["restrict"], g))
            if k in ann.get("kind_restrict", {}):
                parts.append(_alt(ann["kind_restrict"][k], g))
            field_unknown |= _and(parts) is None
            if ann.get("conditional"):
                parts.append(None)
            state = _and(parts)
            if state is True:
                best = True
                break
            if state is None:
                best = None
        if best is True and needs is not None:
            out[mid] = ("applies", "")
        elif best is not False:
            out[mid] = ("may_apply", "field" if field_unknown else "unstated")
    return out


# ---------------------------------------------------------------- items
@dataclass(frozen=True)
class ProfileItem:
    id: str
    split: str
    language: str
    profile: dict
    gold_facts: dict
    applies: tuple[str, ...]
    may_apply: tuple[str, ...]


def load_profiles(path: Path = PROFILES) -> list[ProfileItem]:
    items = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        o = json.loads(line)
        if o.get("split") not in SPLITS:
            raise ValueError(f"{path}:{n}: split must be one of {SPLITS}")
        items.append(ProfileItem(o["id"], o["split"], o["language"], o["profile"], o["gold_facts"],
                                 tuple(o["gold"]["applies"]), tuple(o["gold"]["may_apply"])))
    return items


# ---------------------------------------------------------------- scoring
def score(items: list[ProfileItem], matcher, annotations: dict) -> dict:
    """Metrics per split, plus the rows behind them."""
    from ..matching.match import APPLIES, MAY_APPLY
    from ..matching.profile import Profile

    lib = matcher.library
    rows = []
    for it in items:
        profile = Profile.from_json(it.profile, today=matcher.today())
        check = matcher.check(profile)
        pred = {r.measure.measure_id: r for r in check.results}
        applies = [r.measure.measure_id for r in check.results if r.level == APPLIES]
        maybe = [r.measure.measure_id for r in check.results if r.level == MAY_APPLY]
        gold = {m: "applies" for m in it.applies} | {m: "may_apply" for m in it.may_apply}
        gold_applies = set(it.applies)
        top5, top10 = applies[:5], applies[:10]
        p5 = (sum(m in gold_applies for m in top5) / len(top5)) if top5 else (1.0 if not gold_applies else 0.0)
        r10 = (sum(m in gold_applies for m in top10) / min(10, len(gold_applies))) if gold_applies else None
        union = set(gold) | set(applies) | set(maybe)
        level_ok = sum(1 for m in union if gold.get(m, "does_not_apply") == pred[m].level)
        gold_ok = sum(1 for m in gold if gold[m] == pred[m].level)
        cond_total = cond_ok = 0
        unsafe = confident_unknown = confident_unstated = 0
        g = it.gold_facts
        causes = gold_causes(g, annotations)
        for m in applies + maybe:
            r = pred[m]
            text, title = lib.measures[m].text, r.document.title
            for c in r.conditions:
                cond_total += 1
                cond_ok += bool(c.quote) and (c.quote in text or c.quote in lib.measures[m].title
                                              or (c.category == "district" and c.quote in title))
            doc = m.split("#", 1)[0]
            ann = annotations["measures"].get(m)
            area = (ann or {}).get("districts") or annotations["document_districts"].get(doc, [])
            if r.expired or doc in annotations["expired_documents"] or (
                    g["district"] is not None and g["district"] not in area):
                unsafe += 1
        for m in applies:
            # Gold "may apply" is exactly "a field it needs is unknown" (or a condition left unstated).
            why = causes.get(m, ("", ""))[1]
            if (why == "field" or g["district"] is None or g["needs"] is None
                    or any(c.met is None for c in pred[m].conditions)):
                confident_unknown += 1
            elif why == "unstated":
                confident_unstated += 1
        rows.append({"id": it.id, "split": it.split, "language": it.language, "p5": p5, "r10": r10,
                     "level_ok": level_ok, "level_n": len(union),
                     "gold_ok": gold_ok, "gold_n": len(gold), "cond_ok": cond_ok, "cond_n": cond_total,
                     "unsafe": unsafe, "confident_unknown": confident_unknown,
                     "confident_unstated": confident_unstated,
                     "gold_applies": sorted(gold_applies), "pred_applies": applies[:10],
                     "missed": sorted(gold_applies - set(applies)),
                     "wrong_level": sorted(m for m in union if gold.get(m, "does_not_apply") != pred[m].level)})
    return {split: summarize([r for r in rows if r["split"] == split]) for split in SPLITS} | {"rows": rows}


def summarize(rows: list[dict]) -> dict:
    if not rows:
        return {}
    r10 = [r["r10"] for r in rows if r["r10"] is not None]
    return {
        "profiles": len(rows),
        "precision@5": round(sum(r["p5"] for r in rows) / len(rows), 3),
        "recall@10": round(sum(r10) / len(r10), 3) if r10 else None,
        "level_accuracy": round(sum(r["gold_ok"] for r in rows) / max(1, sum(r["gold_n"] for r in rows)), 3),
        "level_agreement": round(sum(r["level_ok"] for r in rows) / max(1, sum(r["level_n"] for r in rows)), 3),
        "conditions_cited": round(sum(r["cond_ok"] for r in rows) / max(1, sum(r["cond_n"] for r in rows)), 3),
        "unsafe_offers": sum(r["unsafe"] for r in rows),
        "confident_with_unknown": sum(r["confident_unknown"] for r in rows),
        "confident_with_unstated_condition": sum(r["confident_unstated"] for r in rows),
    }


def table(result: dict) -> str:
    """Markdown table, calibration and test side by side, with the targets."""
    names = ["profiles", "precision@5", "recall@10", "level_accuracy", "level_agreement", "conditions_cited",
             "unsafe_offers",
             "confident_with_unknown", "confident_with_unstated_condition"]
    lines = ["| metric | calibration | test | target (test) |", "| --- | --- | --- | --- |"]
    for n in names:
        target = TARGETS.get(n)
        t = "" if target is None else (f"= {target}" if n in ("unsafe_offers", "confident_with_unknown")
                                       else f"≥ {target:.2f}")
        lines.append(f"| {n} | {result['calibration'].get(n)} | {result['test'].get(n)} | {t} |")
    return "\n".join(lines)


def missed_targets(summary: dict) -> list[str]:
    out = []
    for n, target in TARGETS.items():
        v = summary.get(n)
        if v is None:
            continue
        if n in ("unsafe_offers", "confident_with_unknown"):
            if v != target:
                out.append(f"{n} {v} != {target}")
        elif v < target:
            out.append(f"{n} {v} < {target}")
    return out


def run(settings, out_dir: Path, profiles: Path = PROFILES, annotations_path: Path = ANNOTATIONS) -> dict:
    """Score every profile, write `match-report.md` / `.json` into out_dir, return the result."""
    from ..matching.service import Matcher

    annotations = json.loads(annotations_path.read_text(encoding="utf-8"))
    items = load_profiles(profiles)
    result = score(items, Matcher(settings), annotations)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "match-report.json").write_text(json.dumps(result, ensure_ascii=False, indent=1), encoding="utf-8")
    md = ["# Policy health check evaluation", "", f"{len(items)} profiles from {profiles}; gold from {annotations_path}.",
          "", table(result), "", "Test split targets missed: " + (", ".join(missed_targets(result["test"])) or "none")]
    (out_dir / "match-report.md").write_text("\n".join(md) + "\n", encoding="utf-8")
    return result
