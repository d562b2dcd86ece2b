"""Commands beyond the core (evaluation, benchmarks, server), registered onto the `jxa` parser."""

from __future__ import annotations


def register_extra(sub, common) -> None:
    """Attach the extra sub-commands; each imports its heavy modules only when run."""
