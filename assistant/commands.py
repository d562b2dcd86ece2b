"""Commands beyond the core, registered onto the `jxa` parser by the package that owns them:
evaluation and benchmarks (assistant.evaluation), the web server and insights (assistant.web), the
policy library (assistant.library)."""

from __future__ import annotations


def register_extra(sub, common) -> None:
    """Attach the extra sub-commands; each imports its heavy modules only when run."""
    from .evaluation.commands import register as register_evaluation
    from .library.commands import register as register_library
    from .matching.commands import register as register_matching
    from .web.commands import register as register_web

    register_evaluation(sub, common)
    register_web(sub, common)
    register_library(sub, common)
    register_matching(sub, common)
