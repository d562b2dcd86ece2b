"""What a question and its history may be: the one set of input limits, enforced where input arrives
(the API, the chat page, the CLI) and again by the assistant, with the same messages."""

from __future__ import annotations

from ..corpus.clean import strip_invisible
from ..errors import InputError


def clean_question(question: str, max_chars: int) -> str:
    if not isinstance(question, str):
        raise InputError("the question must be text")
    question = strip_invisible(question).strip()
    if not question:
        raise InputError("the question is empty")
    if len(question) > max_chars:
        raise InputError(f"the question is {len(question):,} characters long; the limit is {max_chars:,}")
    return question


def clean_history(history: list[tuple[str, str]] | None, max_chars: int, keep_turns: int) -> list[tuple[str, str]]:
    """The last `keep_turns` earlier turns, cleaned; a message longer than `max_chars` is refused."""
    out = []
    for user, answer in history or []:
        if not isinstance(user, str) or not isinstance(answer, str):
            raise InputError("each history turn must be a pair of texts")
        if len(user) > max_chars or len(answer) > max_chars:
            raise InputError(f"each history message must be at most {max_chars:,} characters")
        out.append((strip_invisible(user), strip_invisible(answer)))
    return out[-keep_turns:] if keep_turns else []
