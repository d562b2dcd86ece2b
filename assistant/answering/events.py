"""What `Assistant.ask_stream` yields."""

from __future__ import annotations

from dataclasses import dataclass

from ..types import Answer


@dataclass(frozen=True)
class StreamEvent:
    """'delta' (verified answer text to append) or 'final' (the Answer)."""

    kind: str
    text: str = ""
    answer: Answer | None = None
