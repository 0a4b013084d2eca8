"""The import graph of ``wxcli`` obeys one-way layers and has no cycles between modules.

Every ``import`` of every module counts — at the top, inside functions (lazy imports) and
under ``TYPE_CHECKING``. Type-only imports are not exempt: a lower layer that names a higher
layer's types is the same coupling (it cannot be type-checked, reused or reasoned about
without the higher layer), and lazy imports are exactly where upward imports used to hide.

Layers, lowest first (a layer may import itself and the layers below it, transitively):

* base — errors, config, paths, files, time, retry, text, logging, TOML editing
* protocol — the wire facts of Web WeChat
* client — talking to WeChat: client, session file, contacts, QR, pacer, sending, account,
  media storage
* store — the archive database (needs only base and protocol: not the client, and not
  what is built on top of it)
* services — analysis, stats, watch, feed, keepalive (built on client and store)
* surface — alerts and the REST server
* demo — the whole product against the simulator
* cli — the ``wxcli`` command
* simulator — beside everything: only base and protocol, so it stays a faithful stand-in
  for WeChat rather than a mirror of wxcli's own code (only demo and cli may use it)

A violation prints as ``module -> imported (line)``. ``KNOWN_*`` lists what other work in
progress still has to fix; they may only shrink: a KNOWN entry that no longer occurs fails
too, so whoever fixes one removes it here.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "wxcli"

#: layer -> (module prefixes, the layers directly below it)
LAYERS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "base": (
        (
            "wxcli",
            "wxcli.errors",
            "wxcli.config",
            "wxcli.paths",
            "wxcli.fileutil",
            "wxcli.timeutil",
            "wxcli.retry",
            "wxcli.textutil",
            "wxcli.logutil",
            "wxcli.tomledit",
            "wxcli.health",
        ),
        (),
    ),
    "protocol": (("wxcli.protocol",), ("base",)),
    "client": (
        (
            "wxcli.client",
            "wxcli.session",
            "wxcli.contacts",
            "wxcli.qr",
            "wxcli.media_input",
            "wxcli.pacer",
            "wxcli.sending",
            "wxcli.account",
            "wxcli.media",
        ),
        ("protocol",),
    ),
    "store": (("wxcli.store",), ("protocol",)),
    "services": (
        ("wxcli.analysis", "wxcli.stats", "wxcli.watch", "wxcli.feed", "wxcli.keepalive"),
        ("client", "store"),
    ),
    "surface": (("wxcli.alerts", "wxcli.server"), ("services",)),
    "simulator": (("wxcli.simulator",), ("protocol",)),
    "demo": (("wxcli.demo",), ("surface", "simulator")),
    "cli": (("wxcli.cli", "wxcli.__main__"), ("demo",)),
}

#: Upward imports still to fix, as (module, imported). Each lives in code other work is
#: reorganising right now; the lead removes an entry when the fix merges.
KNOWN_VIOLATIONS: set[tuple[str, str]] = set()

#: Import cycles (strongly connected modules) still to break, same rule as above.
KNOWN_CYCLES: set[frozenset[str]] = set()


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def all_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def imports(name: str, path: Path, modules: Iterable[str]) -> list[tuple[str, int]]:
    """(imported wxcli module, line) for every import statement anywhere in the module."""
    return [(m, line) for m, line in all_imports(name, path, modules) if top(m) == "wxcli"]


def top(module: str) -> str:
    return module.partition(".")[0]


def all_imports(name: str, path: Path, modules: Iterable[str]) -> list[tuple[str, int]]:
    """(imported module, line) for every import statement anywhere in the module, wxcli's
    own and third-party ones."""
    known = set(modules)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: list[tuple[str, int]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            for alias in node.names:
                # ``from wxcli.store import archive`` imports the submodule, not the package.
                sub = f"{target}.{alias.name}"
                found.append((sub if sub in known else target, node.lineno))
    return list(dict.fromkeys(found))  # ``from x import a, b`` is one import of x


def layer_of(module: str) -> str | None:
    best, best_len = None, -1
    for layer, (prefixes, _) in LAYERS.items():
        for prefix in prefixes:
            matches = module == prefix or module.startswith(prefix + ".")
            if matches and len(prefix) > best_len:
                best, best_len = layer, len(prefix)
    return best


def below(layer: str) -> set[str]:
    """The layers ``layer`` may import: itself and everything under it."""
    seen = {layer}
    todo = [layer]
    while todo:
        for lower in LAYERS[todo.pop()][1]:
            if lower not in seen:
                seen.add(lower)
                todo.append(lower)
    return seen


@functools.cache
def graph() -> dict[str, list[tuple[str, int]]]:
    modules = all_modules()
    return {name: imports(name, path, modules) for name, path in modules.items()}


def violations() -> dict[tuple[str, str], list[int]]:
    found: dict[tuple[str, str], list[int]] = {}
    for module, targets in graph().items():
        allowed = below(layer_of(module) or "")
        for target, line in targets:
            if layer_of(target) not in allowed:
                found.setdefault((module, target), []).append(line)
    return found


def cycles() -> list[frozenset[str]]:
    """Strongly connected components of more than one module (Tarjan, iteratively)."""
    edges = {m: sorted({t for t, _ in ts if t != m}) for m, ts in graph().items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []
    for start in sorted(edges):
        if start in index:
            continue
        work = [(start, iter(edges[start]))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in edges:
                    continue  # not a module (a name that failed to resolve): no edges out
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(edges[child])))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(frozenset(component))
    return found


def test_every_module_has_a_layer():
    missing = sorted(m for m in all_modules() if layer_of(m) is None)
    assert not missing, "modules in no layer (add them to LAYERS): " + ", ".join(missing)


def test_imports_go_down_only():
    found = violations()
    new = sorted(k for k in found if k not in KNOWN_VIOLATIONS)
    stale = sorted(KNOWN_VIOLATIONS - set(found))
    lines = [
        f"{m} -> {t} ({', '.join(map(str, found[(m, t)]))})  [{layer_of(m)} -> {layer_of(t)}]"
        for m, t in new
    ]
    assert not new, "upward imports:\n" + "\n".join(lines)
    assert not stale, "fixed, remove from KNOWN_VIOLATIONS:\n" + "\n".join(
        f"{m} -> {t}" for m, t in stale
    )


def test_no_import_cycles():
    found = set(cycles())
    new = sorted(sorted(c) for c in found - KNOWN_CYCLES)
    stale = sorted(sorted(c) for c in KNOWN_CYCLES - found)
    g = graph()

    def describe(component: list[str]) -> str:
        inside = set(component)
        return "\n".join(
            f"  {m} -> {t} ({line})" for m in component for t, line in g[m] if t in inside
        )

    assert not new, "import cycles:\n" + "\n".join(describe(c) for c in new)
    assert not stale, "broken, remove from KNOWN_CYCLES:\n" + "\n".join(", ".join(c) for c in stale)


def test_only_the_cli_imports_click():
    """The layers below the command line are usable without click (and pay nothing for it)."""
    modules = all_modules()
    found = [
        f"{name} -> {m} ({line})"
        for name, path in modules.items()
        if layer_of(name) != "cli"
        for m, line in all_imports(name, path, modules)
        if top(m) == "click"
    ]
    assert not found, "click outside wxcli.cli:\n" + "\n".join(found)


def test_the_checker_sees_lazy_and_type_only_imports(tmp_path):
    """The parser itself: function-level, TYPE_CHECKING and relative imports all count."""
    pkg = tmp_path / "wxcli" / "store"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    src = pkg / "x.py"
    src.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from wxcli.watch.normalize import ChatMessage\n"
        "def f():\n"
        "    import wxcli.alerts.history\n"
        "    from . import models\n"
        "    from .db import connect\n"
    )
    names = ["wxcli.store", "wxcli.store.x", "wxcli.store.models", "wxcli.store.db"]
    assert imports("wxcli.store.x", src, names) == [
        ("wxcli.watch.normalize", 3),
        ("wxcli.alerts.history", 5),
        ("wxcli.store.models", 6),
        ("wxcli.store.db", 7),
    ]
    assert "store" not in below("client") and "client" not in below("store")
    assert layer_of("wxcli.store.archive") == "store" and layer_of("wxcli") == "base"
