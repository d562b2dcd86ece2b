"""(f) An index build SIGKILLed at each stage: the previous index still loads, unchanged."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from ..rig import ROOT, Figure, Rig


def _manifest_hash(index_dir: Path) -> str | None:
    path = index_dir / "manifest.json"
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None


def _build_command(seeds: Path, index_dir: Path, embedder: str, force: bool) -> list[str]:
    cmd = [sys.executable, "-m", "assistant.testing", "index", "build", "--seeds-dir", str(seeds),
           "--index-dir", str(index_dir), "--embedder", embedder]
    return cmd + (["--force"] if force else [])


def index_kill_check(rig: Rig) -> Figure:
    from ...retrieval import store

    fig = Figure("f", f"an index build SIGKILLed at {len(store.KILL_STAGES)} stages")
    work = rig.work / "kill"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    base = rig.settings.index_dir
    embedder = rig.settings.embedder
    # The rebuild indexes one more document, so a finished rebuild has a different manifest.
    seeds = work / "seeds"
    shutil.copytree(rig.settings.seeds_dir, seeds)
    catalog = json.loads((seeds / "catalog.json").read_text(encoding="utf-8"))
    catalog["documents"]["902_extra.txt"] = {"doc_id": "kill-extra", "district": "Jing'an", "title": "Extra Measures",
                                             "short_title_en": "Extra Measures", "short_title_zh": "补充措施"}
    (seeds / "catalog.json").write_text(json.dumps(catalog, ensure_ascii=False), encoding="utf-8")
    (seeds / "902_extra.txt").write_text("(May 1, 2025)\nI. Tasks\n1. Helping repair shops. We shall help bicycle "
                                         "repair shops find premises.\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("JXA_")}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    force = rig.fake  # the real embedder re-embeds only what changed; the fake one is quick either way
    reference = work / "reference"
    shutil.copytree(base, reference)
    done = subprocess.run(_build_command(seeds, reference, embedder, force), env=env, capture_output=True, text=True,
                          timeout=600)
    if done.returncode != 0:
        fig.failures.append(f"the reference build failed: {done.stderr[-300:]}")
        return fig
    old_hash, new_hash = _manifest_hash(base), _manifest_hash(reference)
    scenarios = [(stage,) for stage in store.KILL_STAGES] + [("old-aside", "old-aside")]
    rows = []
    for stages in scenarios:
        target = work / ("index-" + "-then-".join(stages))
        shutil.copytree(base, target)
        codes = []
        for stage in stages:
            run = subprocess.run(_build_command(seeds, target, embedder, force), env=env | {store.KILL_AT_ENV: stage},
                                 capture_output=True, text=True, timeout=600)
            codes.append(run.returncode)
        leftovers = len(list(target.parent.glob(f".{target.name}.build-*")))
        try:
            data = store.load_index(target, rig.retriever.data.embedder_id)
            loads, chunks = True, len(data.chunks)
        except Exception as exc:
            loads, chunks = False, f"{type(exc).__name__}: {exc}"
        now = _manifest_hash(target)
        expected = new_hash if stages[-1] == "swapped" else old_hash
        intact = bool(now) and store.files_intact(target, json.loads((target / "manifest.json").read_text()))
        rows.append({"stages": " then ".join(stages), "killed": all(c == -signal.SIGKILL for c in codes),
                     "loads": loads, "chunks": chunks, "intact": intact,
                     "manifest": "old" if now == old_hash else "new" if now == new_hash else "other",
                     "as_expected": now == expected, "leftover_tmp": leftovers})
        # The next normal build cleans up after the killed one.
        after = subprocess.run(_build_command(seeds, target, embedder, False), env=env, capture_output=True, text=True,
                               timeout=600)
        rows[-1]["next_build_ok"] = after.returncode == 0 and _manifest_hash(target) == new_hash
        rows[-1]["leftover_after_next_build"] = len(list(target.parent.glob(f".{target.name}.build-*")))
    fig.values = {"scenarios": rows}
    for r in rows:
        fig.lines.append(f"killed at {r['stages']:<22} killed={r['killed']} loads={r['loads']} intact={r['intact']} "
                         f"manifest={r['manifest']} leftover tmp={r['leftover_tmp']}→{r['leftover_after_next_build']} "
                         f"next build ok={r['next_build_ok']}")
        fig.check(r["killed"], f"{r['stages']}: the build was not killed at that stage")
        fig.check(r["loads"] and r["intact"], f"{r['stages']}: the index does not load ({r['chunks']})")
        fig.check(r["as_expected"], f"{r['stages']}: manifest is {r['manifest']}, expected "
                                    f"{'new' if r['stages'].endswith('swapped') else 'old'}")
        fig.check(r["next_build_ok"] and r["leftover_after_next_build"] == 0,
                  f"{r['stages']}: the next build did not finish cleanly")
    return fig
