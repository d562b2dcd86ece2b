"""The package's shape: no import cycle, and no module importing another module's private name."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "assistant"


def _graph():
    mods = {}
    for p in ROOT.rglob("*.py"):
        name = ".".join(("assistant", *p.relative_to(ROOT).with_suffix("").parts))
        mods[name.removesuffix(".__init__")] = p
    graph = {m: set() for m in mods}
    private = []
    for m, p in mods.items():
        pkg = m if p.name == "__init__.py" else m.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = pkg.split(".")[: len(pkg.split(".")) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                if not target.startswith("assistant"):
                    continue
                for a in node.names:
                    full = f"{target}.{a.name}"
                    dest = full if full in mods else target
                    if dest in mods and dest != m:
                        graph[m].add(dest)
                    if a.name.startswith("_") and not a.name.startswith("__"):
                        private.append((m, full))
            elif isinstance(node, ast.Import):
                graph[m] |= {a.name for a in node.names if a.name in mods and a.name != m}
    return graph, private


def _cycles(graph):
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            part = []
            while True:
                w = stack.pop()
                on.discard(w)
                part.append(w)
                if w == v:
                    break
            if len(part) > 1:
                out.append(sorted(part))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_no_import_cycle():
    graph, _ = _graph()
    # A package importing its own submodules is its layout, not a cycle.
    graph = {m: {d for d in deps if not m.startswith(d + ".")} for m, deps in graph.items()}
    assert _cycles(graph) == []


def test_no_private_name_crosses_a_module():
    _, private = _graph()
    assert private == []


def test_the_checks_see_a_cycle_and_a_private_import():
    assert _cycles({"a": {"b"}, "b": {"a"}, "c": set()}) == [["a", "b"]]
    graph, _ = _graph()
    assert "assistant.corpus.gazetteer" in graph["assistant.retrieval.hybrid"]
