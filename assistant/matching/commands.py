"""`jxa match` (a health check from a profile), `jxa labels` (what a measure is labelled with) and
`jxa bench match` (match latency medians)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from ..errors import InputError


def read_profile(path: str, settings):
    from .profile import Profile

    try:
        raw = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read profile {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise InputError(f"profile {path} is not UTF-8 text") from exc
    if len(raw) > 64_000:
        raise InputError(f"profile {path} is larger than 64 KB")
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InputError(f"profile {path} is not valid JSON (line {exc.lineno}: {exc.msg})") from exc
    return Profile.from_json(data, today=settings.effective_today())


def cmd_match(args, settings) -> int:
    from .profile import from_sentence
    from .report import render_html, render_pdf
    from .service import Matcher

    matcher = Matcher(settings)
    if args.text:
        profile = from_sentence(args.text, matcher.library.vocabulary, matcher.today())
    elif args.profile:
        profile = read_profile(args.profile, settings)
    else:
        raise InputError("give a profile: jxa match PROFILE.json (or --text \"we are a …\")")
    check = matcher.check(profile)
    if args.json:
        print(json.dumps(check.to_json(), ensure_ascii=False, indent=1))
    else:
        print(render_text(check))
    if args.html:
        Path(args.html).write_text(render_html(check, full_rest=True), encoding="utf-8")
        print(f"report: {args.html}", file=sys.stderr)
    if args.pdf:
        try:
            Path(args.pdf).write_bytes(render_pdf(render_html(check, full_rest=True)))
        except RuntimeError as exc:
            raise InputError(str(exc)) from exc
        print(f"report: {args.pdf}", file=sys.stderr)
    return 0


def render_text(check) -> str:
    from .match import APPLIES, DOES_NOT_APPLY, MAY_APPLY

    lang = check.profile.lang
    titles = {APPLIES: ("APPLIES", "适用"), MAY_APPLY: ("MAY APPLY (information needed)", "可能适用（需补充信息）"),
              DOES_NOT_APPLY: ("DOES NOT APPLY", "不适用")}
    marks = {True: "✓", False: "✗", None: "?"}
    lines = [f"health check {check.made_on.isoformat()} · library {check.library_version}"]
    for level in (APPLIES, MAY_APPLY):
        rs = check.level(level)
        lines.append(f"\n{titles[level][lang == 'zh']} ({len(rs)})")
        for r in rs:
            lines.append(f"  {r.measure.label}")
            lines.append(f"    {r.reason}")
            for c in r.conditions:
                lines.append(f"    {marks[c.met]} {c.text} — “{_short(c.quote, 80)}”")
            who = "; ".join(r.departments) or r.document.issuer
            lines.append(f"    → {who}")
    rest = check.level(DOES_NOT_APPLY)
    counts: dict[str, int] = {}
    for r in rest:
        counts[r.reason_code] = counts.get(r.reason_code, 0) + 1
    lines.append(f"\n{titles[DOES_NOT_APPLY][lang == 'zh']} ({len(rest)}): "
                 + ", ".join(f"{k} {n}" for k, n in sorted(counts.items())))
    return "\n".join(lines)


def _short(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def cmd_labels(args, settings) -> int:
    from .service import Matcher

    lib = Matcher(settings).library
    lab = lib.labels.labels.get(args.measure_id)
    if lab is None:
        raise InputError(f"no measure {args.measure_id!r} in the index (see `jxa search`)")
    if args.json:
        print(json.dumps(lab.to_json(), ensure_ascii=False, indent=1))
        return 0
    print(f"{args.measure_id}: kinds {', '.join(lab.kinds) or '-'}; scope {', '.join(lab.scope)}"
          + (" (corrected by staff)" if lab.corrected else ""))
    for o in lab.offers:
        bens = ", ".join(f"{t.category}:{t.key} “{t.quote}”" for t in o.beneficiaries)
        where = f" in {', '.join(o.districts)}" if o.districts else ""
        print(f"  offer {'/'.join(o.kinds)}{where}{' · for ' + bens if bens else ''}"
              f"{' · conditional' if o.conditional else ''}\n    “{_short(o.quote, 120)}”")
    return 0


def cmd_bench_match(args, settings) -> int:
    """Medians of a health check over the library: cold (labels loaded) and warm, per profile."""
    from ..evaluation import metrics as M
    from .profile import Profile
    from .service import Matcher

    path = Path(args.profiles)
    profiles = [Profile.from_json(json.loads(line)["profile"], today=settings.effective_today())
                for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    t = time.perf_counter()
    matcher = Matcher(settings)
    matcher.library  # noqa: B018 - load the index and labels: the first request pays this once
    load_ms = (time.perf_counter() - t) * 1000
    times = []
    for _ in range(args.rounds):
        for p in profiles:
            t = time.perf_counter()
            matcher.check(p)
            times.append((time.perf_counter() - t) * 1000)
    n = len(matcher.library.measures)
    print(f"match latency over {len(profiles)} profiles x {args.rounds} rounds, {n} measures (ms)")
    print(f"  load index + labels once: {load_ms:8.1f}")
    print(f"  health check   p50 {M.percentile(times, .5):8.1f}  p95 {M.percentile(times, .95):8.1f}")
    return 0


def register(sub, common) -> None:
    p = sub.add_parser("match", parents=[common],
                       help="policy health check: every measure that applies to an enterprise, conditions cited")
    p.add_argument("profile", nargs="?", help="profile JSON file ('-' for stdin): district, industry, employees, "
                                              "founded_year, qualifications, needs")
    p.add_argument("--text", help="a self-description instead of a file: \"we are a 30-person AI start-up in Xuhui…\"")
    p.add_argument("--json", action="store_true", help="the result as JSON (the same as POST /api/match)")
    p.add_argument("--html", metavar="FILE", help="also write the printable report")
    p.add_argument("--pdf", metavar="FILE", help="also write the report as PDF (needs chromium)")
    p.set_defaults(func=cmd_match)

    p = sub.add_parser("labels", parents=[common], help="the labels of one measure (who, where, kind, conditions)")
    p.add_argument("measure_id")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_labels)
