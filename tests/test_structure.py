"""The shape of the code: no import cycles, no oversized source files.

* ``fusefs/``: no cycle among its modules. Every import statement counts,
  wherever it is: at the top, inside a function (a lazy import dodging a
  cycle is still a cycle), under ``if TYPE_CHECKING:``. What counts is the
  module an import names (``from fusefs.cli import stream`` names
  ``fusefs.cli.stream``); the parent packages Python runs first are not
  counted, or every package importing its own submodules would be a cycle.
* ``rustlib/core/src``: no cycle among its files, nor among its top-level
  modules (the directories and files directly under ``src/``). A file's
  dependencies are the paths it names: ``use`` trees (``crate::``,
  ``super::``, ``self::`` and a child module declared in the file) and
  inline ``crate::a::b`` / ``super::x`` paths, each mapped to the file of the
  longest module prefix (a ``mod.rs`` is its directory's module). ``mod x;``
  declarations are not dependencies. Ignored: comments and string literals,
  and ``#[cfg(test)] mod tests { ... }`` blocks (test code may use anything).
  ``lib.rs`` is the crate root, not a node: ``crate::Error`` goes through
  its ``pub use`` to ``error.rs``.
* No source file (``rustlib/core/src/**/*.rs``, ``rustlib/python/src/**/*.rs``,
  ``fusefs/**/*.py``) is longer than :data:`MAX_LINES`, unless
  :data:`LONG_FILES` names it with its reason.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "fusefs"
CORE_SRC = ROOT / "rustlib" / "core" / "src"

MAX_LINES = 600
#: Source files allowed over MAX_LINES (path relative to the repository: reason).
LONG_FILES: dict[str, str] = {
    "rustlib/core/src/metadata/state.rs": (
        "MetadataState::apply is one match over the entry kinds (FORMAT.md §9.3 follows"
        " it arm by arm); split, the preconditions and effects of one entry would read"
        " apart from the others'"
    ),
}


# --- finding cycles -------------------------------------------------------------------------


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The cycles of ``graph``, each as ``[a, b, ..., a]``: for every edge inside a
    strongly connected component, the shortest cycle through it (deduplicated)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def connect(v: str) -> None:  # Tarjan's algorithm; graphs here are small
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1 or v in graph.get(v, ()):
                components.append(component)

    for v in sorted(graph):
        if v not in index:
            connect(v)
    cycles = set()
    for component in components:
        for u in component:
            for v in graph.get(u, ()):
                if v in component:
                    path = _shortest_path(graph, component, v, u)
                    cycle = [u, *path]  # u -> v -> ... -> u
                    first = cycle.index(min(cycle[:-1]))
                    cycles.add(tuple(cycle[first:-1] + cycle[:first] + [cycle[first]]))
    return sorted(list(c) for c in cycles)


def _shortest_path(graph: dict[str, set[str]], within: set[str], start: str, end: str) -> list[str]:
    paths = {start: [start]}
    queue = [start]
    while queue:
        v = queue.pop(0)
        if v == end:
            return paths[v]
        for w in sorted(graph.get(v, ())):
            if w in within and w not in paths:
                paths[w] = paths[v] + [w]
                queue.append(w)
    raise AssertionError(f"{end} is not reachable from {start}")


def describe(cycles: Iterable[list[str]]) -> str:
    return "; ".join(" -> ".join(c) for c in cycles)


# --- Python ---------------------------------------------------------------------------------


def python_modules(package: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every .py file of the package."""
    modules = {}
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _is_submodule(package: Path, dotted: str, name: str) -> bool:
    """Whether ``from <dotted> import <name>`` names a module (a .py, a package,
    or an extension such as ``_native``) rather than an attribute."""
    base = package.parent.joinpath(*dotted.split("."))
    return (
        (base / f"{name}.py").exists()
        or (base / name / "__init__.py").exists()
        or (base / f"{name}.pyi").exists()
        or any(base.glob(f"{name}.*.so"))
    )


def python_imports(package: Path) -> dict[str, set[str]]:
    """Module -> the modules of the package it imports, anywhere in its file."""
    modules = python_modules(package)
    top = package.name
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    here = name.split(".") if is_package else name.split(".")[:-1]
                    base_parts = here[: len(here) - node.level + 1]
                    base = ".".join(base_parts + ([node.module] if node.module else []))
                else:
                    base = node.module or ""
                for alias in node.names:
                    if base.split(".")[0] == top and _is_submodule(package, base, alias.name):
                        targets.append(f"{base}.{alias.name}")
                    else:
                        targets.append(base)
            for target in targets:
                # The longest prefix that is a module of ours (an extension
                # module, or another package, is not a node).
                parts = target.split(".")
                while parts and ".".join(parts) not in modules:
                    if ".".join(parts[:-1]) in modules and _is_submodule(
                        package, ".".join(parts[:-1]), parts[-1]
                    ):
                        parts = []  # fusefs._native: an extension, not ours
                        break
                    parts.pop()
                if parts and ".".join(parts) != name:
                    graph[name].add(".".join(parts))
    return graph


def test_no_import_cycle_in_fusefs() -> None:
    graph = python_imports(PACKAGE)
    assert len(graph) >= 10 and graph["fusefs.cli"], graph  # it sees the package
    cycles = find_cycles(graph)
    assert not cycles, f"import cycles in fusefs/: {describe(cycles)}"


def test_python_cycle_finder_counts_lazy_and_type_checking_imports(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from pkg import b\n")
    (pkg / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.a import f\n"
    )
    (pkg / "sub" / "__init__.py").write_text("from . import c\n")
    (pkg / "sub" / "c.py").write_text("from ..a import f\nimport pkg.sub\n")
    (pkg / "d.py").write_text("import pkg.sub.c\nfrom pkg import e\n")
    (pkg / "e.py").write_text("X = 1\n")
    graph = python_imports(pkg)
    assert graph["pkg.d"] == {"pkg.sub.c", "pkg.e"}
    assert (
        describe(find_cycles(graph)) == "pkg.a -> pkg.b -> pkg.a; pkg.sub -> pkg.sub.c -> pkg.sub"
    )


# --- Rust -----------------------------------------------------------------------------------


def rust_modules(src: Path) -> dict[tuple[str, ...], Path]:
    """Module path (``("vault", "engine")``) -> file; ``()`` is lib.rs."""
    modules = {}
    for path in sorted(src.rglob("*.rs")):
        parts = list(path.relative_to(src).with_suffix("").parts)
        if parts[-1] in ("mod", "lib") and (parts[-1] == "mod" or len(parts) == 1):
            parts.pop()
        modules[tuple(parts)] = path
    return modules


def _strip_rust(text: str) -> str:
    """Code without comments, string literals and ``#[cfg(test)] mod tests { }`` blocks."""
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    text = re.sub(r"//[^\n]*", " ", text)
    text = re.sub(r'b?"(?:\\.|[^"\\])*"', '""', text, flags=re.S)
    while match := re.search(r"#\[cfg\(test\)\]\s*(?:pub\s+)?mod\s+\w+\s*\{", text):
        depth, i = 1, match.end()
        while depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        text = text[: match.start()] + text[i:]
    return text


def _expand_use(tree: str) -> list[str]:
    """``a::{b, c::{d, e}}`` -> ``["a::b", "a::c::d", "a::c::e"]`` (``as`` and ``*`` dropped)."""
    tree = re.sub(r"\s+", "", tree)
    if "{" not in tree:
        return [re.sub(r"as\w+$", "", tree.removesuffix("::*"))]
    head, _, rest = tree.partition("{")
    body = rest[: rest.rindex("}")]
    items, depth, start = [], 0, 0
    for i, ch in enumerate(body):
        depth += {"{": 1, "}": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            items.append(body[start:i])
            start = i + 1
    items.append(body[start:])
    out = []
    for item in filter(None, items):
        for path in _expand_use(item):
            out.append(head.removesuffix("::") if path == "self" else head + path)
    return out


def rust_dependencies(src: Path) -> dict[str, set[str]]:
    """File -> the files whose modules it names (paths relative to ``src``)."""
    modules = rust_modules(src)
    texts = {module: _strip_rust(path.read_text()) for module, path in modules.items()}
    # The crate root's re-exports (``pub use error::{Error, Result}``): name -> module.
    root_exports: dict[str, tuple[str, ...]] = {}
    for tree in re.findall(r"\bpub\s+use\s+([^;]+);", _drop_inline_mods(texts.get((), ""))):
        for path in _expand_use(tree):
            parts = tuple(p for p in path.split("::") if p and p != "crate")
            if parts:
                root_exports[parts[-1]] = parts[:-1]

    def resolve(here: tuple[str, ...], path: str, children: set[str]) -> tuple[str, ...] | None:
        parts = [p for p in path.split("::") if p]
        if not parts:
            return None
        if parts[0] == "crate":
            base: list[str] = []
            parts = parts[1:]
        elif parts[0] in ("self", "super"):
            base = list(here)
            while parts and parts[0] in ("self", "super"):
                if parts.pop(0) == "super":
                    base = base[:-1]
        elif parts[0] in children:
            base = list(here)
        else:
            return None  # std, another crate, a local name
        full = base + parts
        if len(full) >= 1 and tuple(full[:1]) not in modules and full[0] in root_exports:
            full = list(root_exports[full[0]]) + full[1:]
        for n in range(len(full), 0, -1):
            if tuple(full[:n]) in modules:
                return tuple(full[:n])
        return None  # the crate root itself

    graph: dict[str, set[str]] = {}
    for module, text in texts.items():
        if module == ():
            continue  # lib.rs: the crate root declares and re-exports, it is not a node
        name = modules[module].relative_to(src).as_posix()
        children = set(re.findall(r"\bmod\s+(\w+)\s*;", text))
        paths = []
        for tree in re.findall(r"\buse\s+([^;]+);", text):
            paths += _expand_use(tree)
        code = re.sub(r"\buse\s+[^;]+;", " ", text)
        paths += re.findall(r"\b(?:crate|super|self)(?:::\w+)+", code)
        if children:
            paths += re.findall(rf"(?<![\w:])(?:{'|'.join(children)})(?:::\w+)+", code)
        deps = graph.setdefault(name, set())
        for path in paths:
            target = resolve(module, path, children)
            if target is not None and target != module:
                deps.add(modules[target].relative_to(src).as_posix())
    return graph


def _drop_inline_mods(text: str) -> str:
    """lib.rs without its inline ``mod x { }`` bodies (the prelude re-exports again)."""
    while match := re.search(r"\bmod\s+\w+\s*\{", text):
        depth, i = 1, match.end()
        while depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        text = text[: match.start()] + text[i:]
    return text


def top_level(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """The file graph collapsed onto the first component of each path (``vault/x.rs`` -> vault)."""
    out: dict[str, set[str]] = {}
    for file, deps in graph.items():
        name = file.split("/")[0].removesuffix(".rs")
        out.setdefault(name, set()).update(
            d.split("/")[0].removesuffix(".rs")
            for d in deps
            if d.split("/")[0] != file.split("/")[0]
        )
    return out


def _top(file: str) -> str:
    return file.split("/")[0].removesuffix(".rs")


def test_no_cycle_among_rust_core_files() -> None:
    graph = rust_dependencies(CORE_SRC)
    assert len(graph) >= 10, graph
    cycles = find_cycles(graph)
    assert not cycles, f"cycles among rustlib/core/src files: {describe(cycles)}"


def test_no_cycle_among_rust_core_top_level_modules() -> None:
    graph = top_level(rust_dependencies(CORE_SRC))
    assert len(graph) >= 5, graph
    cycles = find_cycles(graph)
    assert not cycles, f"cycles among rustlib/core/src top-level modules: {describe(cycles)}"


def test_rust_cycle_finder(tmp_path: Path) -> None:
    src = tmp_path / "src"
    for d in ("log", "vault", "util"):
        (src / d).mkdir(parents=True)
    files = {
        "lib.rs": "pub mod codec; pub mod log; pub mod vault; pub mod util;\n"
        "pub use util::err::{Error, Result};\n",
        "codec.rs": "use crate::log::entry::Record; // crate::vault in a comment\n"
        'const S: &str = "crate::vault::X";\n',
        "log/mod.rs": "pub mod entry;\npub use entry::Record;\n",
        "log/entry.rs": "pub fn f() { crate::codec::encode(); }\n",
        "vault/mod.rs": "mod engine;\npub use self::engine::Vault;\n",
        "vault/engine.rs": "use super::super::util::{err::Error, io};\nuse crate::Result;\n"
        "#[cfg(test)]\nmod tests {\n    use crate::log::entry::f;\n    fn g() { {} }\n}\n",
        "util/mod.rs": "pub mod err;\npub mod io;\n",
        "util/err.rs": "pub struct Error;\n",
        "util/io.rs": "use super::err::Error;\n",
    }
    for name, text in files.items():
        (src / name).write_text(text)
    graph = rust_dependencies(src)
    assert graph["codec.rs"] == {"log/entry.rs"}
    assert graph["vault/mod.rs"] == {"vault/engine.rs"}
    assert graph["vault/engine.rs"] == {"util/err.rs", "util/io.rs"}  # not the test's log
    assert graph["log/mod.rs"] == {"log/entry.rs"}
    assert describe(find_cycles(graph)) == "codec.rs -> log/entry.rs -> codec.rs"
    assert describe(find_cycles(top_level(graph))) == "codec -> log -> codec"


# --- file sizes ----------------------------------------------------------------------------


SOURCES = {
    "fusefs": (PACKAGE, "*.py"),
    "rustlib/core": (CORE_SRC, "*.rs"),
    "rustlib/python": (ROOT / "rustlib" / "python" / "src", "*.rs"),
}


@pytest.mark.parametrize("tree", sorted(SOURCES))
def test_no_source_file_over_max_lines(tree: str) -> None:
    directory, pattern = SOURCES[tree]
    files = sorted(directory.rglob(pattern))
    assert files, directory
    long = []
    for path in files:
        name = path.relative_to(ROOT).as_posix()
        lines = len(path.read_text().splitlines())
        if lines > MAX_LINES and name not in LONG_FILES:
            long.append(f"{name} ({lines} lines)")
    assert not long, f"over {MAX_LINES} lines: {', '.join(long)}"
