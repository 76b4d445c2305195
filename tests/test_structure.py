"""The shape of the code: the sandbox stands apart, and rooms' modules import no cycle."""

import ast
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PORTAL_PACKAGES = ("rooms", "portal")


def _imported_modules(path: Path) -> set[str]:
    """Return every module a Python file imports, at any depth of its code."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
    return found


def test_no_portal_module_imports_the_sandbox():
    offenders = []
    for package in PORTAL_PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            for module in _imported_modules(path):
                if module == "sandbox" or module.startswith("sandbox."):
                    offenders.append(f"{path.relative_to(ROOT)} imports {module}")
    assert offenders == []


def test_the_sandbox_is_its_own_app_with_its_command():
    from django.apps import apps

    assert apps.get_app_config("sandbox").path == str(ROOT / "sandbox")
    assert (ROOT / "sandbox" / "management" / "commands" / "sandbox_space.py").exists()
    assert not (ROOT / "rooms" / "signalwire" / "sandbox").exists()


def _rooms_modules() -> dict[str, Path]:
    """Map every module of the rooms app to its file (packages by their __init__)."""
    modules = {}
    for path in (ROOT / "rooms").rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _import_edges(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Return the rooms modules one module imports, at module level or inside functions."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            # `from package import module` imports that module; otherwise the base.
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                for alias in node.names
            ]
        else:
            continue
        found.update(t for t in targets if t in modules and t != name)
    return found


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Return one path around each strongly connected group of modules (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


def test_the_rooms_modules_import_each_other_without_a_cycle():
    modules = _rooms_modules()
    graph = {name: _import_edges(name, path, modules) for name, path in modules.items()}
    # The walk sees imports inside functions too, and the seam modules it must.
    assert "rooms.outbox" in graph["rooms.services.common"]
    assert "rooms.services" in graph["rooms.restore"]

    assert _cycles(graph) == []


def test_the_cycle_finder_sees_a_cycle_through_a_function_level_import(tmp_path):
    package = tmp_path / "rooms"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from rooms import b\n")
    (package / "b.py").write_text("def later():\n    from rooms.a import thing\n")
    modules = {"rooms": package / "__init__.py", "rooms.a": package / "a.py",
               "rooms.b": package / "b.py"}
    graph = {name: _import_edges(name, path, modules) for name, path in modules.items()}

    assert _cycles(graph) == [["rooms.a", "rooms.b"]]


def test_the_outbox_sends_tasks_by_name_and_imports_no_task_module():
    imported = _imported_modules(ROOT / "rooms" / "outbox.py")
    assert not {m for m in imported if m.startswith("rooms")}
    from rooms import outbox
    from rooms.registry import RESOURCES
    from rooms.tasks import push

    for kind in RESOURCES:
        assert outbox.push_task_name(kind) == push.PUSH_TASKS[kind].name
        assert outbox.push_task_name(kind, delete=True) == push.DELETE_TASKS[kind].name
    assert outbox.push_task_name("room") == push.push_room.name
    assert outbox.DELETE_REMOTE_TASK == push.delete_remote.name


def _pinned(requirements: str) -> set[str]:
    """The lower-cased names a requirements file pins (not the files it includes)."""
    names = set()
    for line in (ROOT / requirements).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            names.add(line.split("==", 1)[0].split("[", 1)[0].strip().lower())
    return names


def _code_imports(*packages: str) -> set[str]:
    """The top-level modules that the project's code under these folders imports."""
    found = set()
    for package in packages:
        for path in (ROOT / package).rglob("*.py"):
            found.update(module.split(".", 1)[0] for module in _imported_modules(path))
    return found


def test_yaml_is_a_test_requirement_that_no_runtime_code_imports():
    runtime = _code_imports("rooms", "portal", "sandbox", "scripts", "bench")
    assert "yaml" not in runtime
    assert "pyyaml" not in _pinned("requirements.txt")
    assert "pyyaml" in _pinned("requirements-dev.txt")
    assert "yaml" in _code_imports("tests")


def test_every_library_pinned_for_development_only_is_used():
    # Tools, type stubs and pytest's Django plugin are run or loaded, never imported.
    tools = {"ruff", "mypy", "django-stubs", "django-stubs-ext", "celery-types", "pytest-django"}
    modules = {"pyyaml": "yaml"}
    imported = _code_imports("rooms", "portal", "sandbox", "scripts", "bench", "tests")
    unused = [
        name
        for name in _pinned("requirements-dev.txt") - tools
        if not name.startswith("types-") and modules.get(name, name) not in imported
    ]
    assert unused == []


def test_schemathesis_cache_is_ignored_by_git():
    result = subprocess.run(
        ["git", "check-ignore", "-q", ".schemathesis/examples"], cwd=ROOT, check=False
    )
    assert result.returncode == 0
