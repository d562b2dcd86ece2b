"""Progress bars for the command line: driven by (done, total) callbacks, silent off a terminal."""

from __future__ import annotations

import sys
from typing import Any


class _NoBar:
    def __call__(self, done: int, total: int) -> None: ...

    def close(self) -> None: ...


def progress_bar(desc: str):
    """A tqdm bar driven by (done, total) callbacks; nothing when stderr is not a terminal."""
    if not sys.stderr.isatty():
        return _NoBar()
    from tqdm import tqdm

    class Bar:
        def __init__(self) -> None:
            self.bar: Any = None

        def __call__(self, done: int, total: int) -> None:
            if self.bar is None:
                self.bar = tqdm(total=total, desc=desc, unit="chunk")
            self.bar.n = done
            self.bar.refresh()

        def close(self) -> None:
            if self.bar is not None:
                self.bar.close()

    return Bar()
