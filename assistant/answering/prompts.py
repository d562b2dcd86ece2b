"""Prompt templates are data files of the package (assistant/prompts/, read with importlib.resources,
so an installed wheel has them): '#' lines at the top document them and list their variables
('# vars: a, b'); the body uses $name placeholders (string.Template), so braces in policy text never
break formatting."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from string import Template

from ..errors import ConfigError

PROMPTS_DIR: Traversable = resources.files("assistant").joinpath("prompts")


@dataclass(frozen=True)
class Prompt:
    name: str
    variables: tuple[str, ...]
    template: Template
    sha256: str

    def render(self, **values: str) -> str:
        missing = set(self.variables) - set(values)
        if missing:
            raise ConfigError(f"prompt {self.name!r} needs {sorted(missing)}")
        return self.template.substitute({k: values[k] for k in self.variables}).strip()


def load_prompt(name: str, directory: Path | Traversable = PROMPTS_DIR) -> Prompt:
    path = directory / f"{name}.txt"
    if not path.is_file():
        raise ConfigError(f"prompt file {path} is missing")
    raw = path.read_text(encoding="utf-8")
    lines = raw.splitlines()
    variables: tuple[str, ...] = ()
    body_start = 0
    for i, line in enumerate(lines):
        if not line.startswith("#"):
            body_start = i
            break
        m = re.match(r"#\s*vars:\s*(.*)$", line)
        if m:
            variables = tuple(v.strip() for v in m.group(1).split(",") if v.strip())
    body = "\n".join(lines[body_start:])
    used = set(re.findall(r"\$(\w+)", body))
    if used != set(variables):
        raise ConfigError(f"prompt {path}: declares {sorted(variables)} but uses {sorted(used)}")
    return Prompt(name, variables, Template(body), hashlib.sha256(raw.encode()).hexdigest())


class PromptSet:
    """The prompts an Assistant uses, loaded once; `sha256` changes when any of them changes."""

    NAMES = ("system", "answer", "refusal_en", "refusal_zh", "translate", "relevance", "rerank", "prior")

    def __init__(self, directory: Path | Traversable = PROMPTS_DIR):
        self.prompts = {name: load_prompt(name, directory) for name in self.NAMES}
        self.sha256 = hashlib.sha256("".join(p.sha256 for p in self.prompts.values()).encode()).hexdigest()

    def __getitem__(self, name: str) -> Prompt:
        return self.prompts[name]
