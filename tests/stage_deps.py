"""What each DVC stage's command really imports: the transitive closure of ``kexue`` modules,
read from the source with ``ast`` (function-local imports included), for the dep tests.

A stage runs ``python -m kexue.stages.<name> [family] ...``. Its closure starts at that module; a
``importlib.import_module(f"kexue.families.{...}")`` dispatch adds the family named by the first
positional argument; ``from kexue.layers import CRF`` adds the module the lazy package maps the
name to (its ``_LAZY`` table); importing ``a.b.c`` runs ``a`` and ``a.b`` too.
"""

from __future__ import annotations

import ast
import functools
import shlex
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Stage:
    name: str
    cmd: str
    deps: tuple[str, ...]  # declared paths (params.yaml excluded)
    outs: tuple[str, ...]
    params: tuple[str, ...]  # declared params keys


def dvc_stages(root: Path = ROOT) -> list[Stage]:
    """Every stage of ``root/dvc.yaml``, foreach items expanded, as DVC itself reads them."""
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        out = []
        for stage in repo.index.stages:
            if not getattr(stage, "cmd", None):
                continue
            deps, params = [], []
            for dep in stage.deps:
                keys = getattr(dep, "params", None)
                if keys is not None and dep.def_path.endswith("params.yaml"):
                    params.extend(keys)
                else:
                    deps.append(str(dep.def_path))
            cmd = stage.cmd if isinstance(stage.cmd, str) else " && ".join(stage.cmd)
            out.append(Stage(stage.addressing, cmd, tuple(deps),
                             tuple(str(o.def_path) for o in stage.outs), tuple(params)))
        return out


def _parents(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


def module_file(name: str, src: Path) -> Path | None:
    base = src.joinpath(*name.split("."))
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    return None


@functools.cache
def _lazy_table(package: str, src: Path) -> dict[str, str]:
    """A package's ``_LAZY = {name: module}`` table (names it loads on first access)."""
    path = module_file(package, src)
    if path is None or path.name != "__init__.py":
        return {}
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if (isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "_LAZY"
                                                 for t in node.targets)):
            return ast.literal_eval(node.value)
    return {}


@functools.cache
def direct_imports(name: str, src: Path) -> tuple[frozenset[str], frozenset[str]]:
    """(kexue modules ``name`` imports anywhere in its body, dispatch prefixes such as
    ``kexue.families.`` of its ``import_module(f"...{x}")`` calls)."""
    path = module_file(name, src)
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    dispatch: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(m for a in node.names if a.name.split(".")[0] == "kexue"
                         for m in _parents(a.name))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            if base.split(".")[0] != "kexue":
                continue
            found.update(_parents(base))
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                if module_file(sub, src):
                    found.add(sub)
                elif alias.name in _lazy_table(base, src):
                    found.update(_parents(_lazy_table(base, src)[alias.name]))
        elif (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.JoinedStr)
              and getattr(node.func, "attr", getattr(node.func, "id", None)) == "import_module"):
            head = node.args[0].values[0]
            if isinstance(head, ast.Constant) and str(head.value).startswith("kexue."):
                dispatch.add(head.value)
    return frozenset(found), frozenset(dispatch)


def closure(module: str, positional: list[str], src: Path) -> set[str]:
    """Every kexue module running ``python -m module positional...`` imports."""
    seen: set[str] = set()
    todo = list(_parents(module))
    while todo:
        name = todo.pop()
        if name in seen or module_file(name, src) is None:
            continue
        seen.add(name)
        found, dispatch = direct_imports(name, src)
        todo.extend(found)
        for prefix in dispatch:  # the family the stage names on its command line
            if positional:
                todo.extend(_parents(prefix + positional[0]))
    return seen


def command_closure(cmd: str, root: Path = ROOT) -> set[str]:
    """The closure of a stage command ``python -m kexue.stages.x [positional...] --opt ...``,
    as files relative to ``root`` (``src/kexue/...py``)."""
    src = root / "src"
    words = shlex.split(cmd)
    if "-m" not in words:
        return set()
    module = words[words.index("-m") + 1]
    rest = words[words.index("-m") + 2:]
    positional = []
    for word in rest:
        if word.startswith("-"):
            break
        positional.append(word)
    return {module_file(m, src).relative_to(root).as_posix() for m in closure(module, positional, src)}


def declared_sources(stage: Stage, root: Path = ROOT) -> set[str]:
    """The ``.py`` files under ``src/`` a stage's deps name (a directory names all below it)."""
    files: set[str] = set()
    for dep in stage.deps:
        path = root / dep
        if not dep.startswith("src/"):
            continue
        if path.is_dir():
            files.update(p.relative_to(root).as_posix() for p in path.rglob("*.py"))
        elif dep.endswith(".py"):
            files.add(dep)
    return files


def has_code(path: Path) -> bool:
    """False for a module that is only a docstring (a package marker): editing it changes nothing
    a stage does, so the dep tests do not ask stages to declare it."""
    body = ast.parse(path.read_text(encoding="utf-8")).body
    return any(not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant))
               for node in body)


def required_sources(cmd: str, root: Path = ROOT) -> set[str]:
    """The source files a stage command must declare: its closure, package markers aside."""
    return {f for f in command_closure(cmd, root) if has_code(root / f)}


def mismatches(root: Path = ROOT) -> list[str]:
    """One line per stage whose declared source deps differ from what its command imports."""
    problems = []
    for stage in dvc_stages(root):
        required, declared = required_sources(stage.cmd, root), declared_sources(stage, root)
        name = stage.name.split(":")[-1]
        problems += [f"{name}: imports {m} but does not list it in its deps"
                     for m in sorted(required - declared)]
        problems += [f"{name}: lists {m} in its deps but never imports it"
                     for m in sorted(declared - required)]
    return problems


def _command_key(cmd: str) -> tuple[str, tuple[str, ...]]:
    words = shlex.split(cmd)
    at = words.index("-m")
    return words[at + 1], tuple(words[at + 2:])


def _argv_key(argv: list[str]) -> tuple[str, tuple[str, ...]]:
    path = Path(argv[0])
    module = "kexue.stages." + path.stem
    return module, tuple(argv[1:])


def _within(path: str, roots: tuple[str, ...]) -> bool:
    return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)


def _temp_beside(path: str, outs: tuple[str, ...]) -> bool:
    """Atomic writes go to a hidden ``.<name>.*`` file or folder beside the out (kexue.io's
    ``.<name>.*.tmp`` and ``.<stem>.tmp.*``), then are renamed onto it."""
    for out in outs:
        out_parent, _, out_name = out.rstrip("/").rpartition("/")
        prefix = f"{out_parent}/" if out_parent else ""
        if not path.startswith(prefix):
            continue
        first = path[len(prefix):].split("/")[0]
        stem = out_name.rsplit(".", 1)[0]
        if first.startswith(f".{out_name}.") or first.startswith(f".{stem}.tmp."):
            return True
    return False


def audit_problems(log: Path, stages: list[Stage]) -> tuple[list[str], set[str]]:
    """(one line per undeclared read, write or params section in the audit log of
    tests/audit/sitecustomize.py, the names of the stages the log saw)."""
    import json

    by_key = {_command_key(s.cmd): s for s in stages if "-m" in shlex.split(s.cmd)}
    problems: set[str] = set()
    seen: set[str] = set()
    for line in log.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        stage = by_key.get(_argv_key(record["argv"]))
        if stage is None:
            problems.add(f"a process no stage runs: {' '.join(record['argv'])}")
            continue
        name = stage.name.split(":")[-1]
        seen.add(name)
        if "params" in record:
            section = record["params"]
            if not any(k == section or section.startswith(k + ".") or k.startswith(section + ".")
                       for k in stage.params):
                problems.add(f"{name}: reads params section '{section}' it does not declare")
        elif record["write"]:
            if not (_within(record["path"], stage.outs) or _temp_beside(record["path"], stage.outs)):
                problems.add(f"{name}: writes {record['path']}, not a declared out")
        elif not (_within(record["path"], stage.deps + stage.outs)
                  or _temp_beside(record["path"], stage.outs)):
            problems.add(f"{name}: reads {record['path']}, not a declared dep")
    return sorted(problems), seen
