"""Commands beyond the core, registered onto the `jxa` parser by the package that owns them:
evaluation and benchmarks (assistant.evaluation), the hardening checks (assistant.hardening), the web
server and insights (assistant.web)."""

from __future__ import annotations


def register_extra(sub, common) -> None:
    """Attach the extra sub-commands; each imports its heavy modules only when run."""
    from .evaluation.commands import register as register_evaluation
    from .hardening.command import register as register_hardening
    from .web.commands import register as register_web

    register_evaluation(sub, common)
    register_hardening(sub, common)
    register_web(sub, common)
