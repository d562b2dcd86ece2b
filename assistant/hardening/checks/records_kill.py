"""(h) A consultation-record writer SIGKILLed after commits: no committed record lost."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from ..rig import ROOT, Figure, Rig

_WRITER = """
import sys
from assistant.records import Records
from assistant.types import Answer
records = Records(sys.argv[1])
i = 0
while True:
    i += 1
    answer = Answer(question=f"question {i} about patents", language="en", answer=f"answer {i} [1].", refused=False,
                    citations=(), related=(), hits=(), timings={"total_ms": float(i)})
    print(records.add(answer, session_id="writer-" + sys.argv[2]), flush=True)
"""


def records_kill_check(rig: Rig, kill_after: tuple[int, ...] = (1, 7, 50, 200, 600)) -> Figure:
    from ...records import Records

    fig = Figure("h", f"a consultation-record writer SIGKILLed {len(kill_after)} times after commits")
    db = rig.work / "kill-records.sqlite3"
    env = {k: v for k, v in os.environ.items() if not k.startswith("JXA_")}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    acked: list[str] = []
    for n, after in enumerate(kill_after):
        proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(db), str(n)], stdout=subprocess.PIPE, env=env,
                                text=True)
        assert proc.stdout is not None
        mine = []
        while len(mine) < after:
            line = proc.stdout.readline()
            if not line:
                break
            mine.append(line.strip())
        os.kill(proc.pid, signal.SIGKILL)  # mid-stream: the next insert is likely half done
        rest = proc.stdout.read()
        proc.wait()
        mine += [ln.strip() for ln in rest.splitlines() if ln.strip()]
        acked += mine
    records = Records(db)
    try:
        missing = [ref for ref in acked if records.get(ref) is None]
        total = records.count()
        integrity = records.integrity_check()
    finally:
        records.close()
    fig.values = {"kills": len(kill_after), "acknowledged": len(acked), "stored": total, "lost": len(missing),
                  "integrity": integrity}
    fig.lines = [f"{len(kill_after)} SIGKILLs, {len(acked)} commits acknowledged, {total} records after reopening, "
                 f"{len(missing)} lost; integrity_check {integrity}"]
    fig.check(not missing, f"{len(missing)} acknowledged records lost")
    fig.check(integrity == "ok", f"integrity_check says {integrity}")
    return fig
