"""The shape of the code: the sandbox stands apart, no module imports a cycle or grows too long."""

import ast
import os
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PORTAL_PACKAGES = ("rooms", "staff", "portal")
# The production code: the portal's packages and the sandbox Space the tests serve.
PRODUCTION_PACKAGES = (*PORTAL_PACKAGES, "sandbox")


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


def test_staff_accounts_are_their_own_app_with_no_models_of_its_own():
    from axes.models import AccessAttempt, AccessLog
    from django.apps import apps
    from django.contrib import admin
    from django.urls import reverse
    from django_otp.plugins.otp_totp.models import TOTPDevice

    staff = apps.get_app_config("staff")
    assert staff.path == str(ROOT / "staff")
    assert list(staff.get_models()) == []
    assert not (ROOT / "staff" / "migrations").exists()
    assert (ROOT / "staff" / "management" / "commands" / "ensure_local_superuser.py").exists()
    assert not {"accounts.py", "account_apps.py"} & {p.name for p in (ROOT / "rooms").iterdir()}
    assert not (ROOT / "rooms" / "admin" / "accounts.py").exists()
    # Login records, lockouts and TOTP devices keep their own apps' labels and admin pages.
    for model in (AccessAttempt, AccessLog, TOTPDevice):
        assert type(admin.site.get_model_admin(model)).__module__ == "staff.admin"
    assert reverse("admin:otp_totp_totpdevice_changelist").endswith("/otp_totp/totpdevice/")
    assert reverse("portal_otp_enrol") == "/admin/account/two-factor/"
    assert reverse("portal_otp_verify") == "/admin/account/two-factor/verify/"


def _package_modules(packages: tuple[str, ...], root: Path = ROOT) -> dict[str, Path]:
    """Map every module of these packages to its file (packages by their __init__)."""
    modules = {}
    for package in packages:
        for path in (root / package).rglob("*.py"):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def _type_checking_only(tree: ast.AST) -> set[int]:
    """Return the ids of the import nodes under `if TYPE_CHECKING:` (types only, never run)."""
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test) in (
            "TYPE_CHECKING", "typing.TYPE_CHECKING"
        ):
            for stmt in node.body:
                skipped.update(id(inner) for inner in ast.walk(stmt))
    return skipped


def _import_edges(
    name: str, path: Path, modules: dict[str, Path], *, for_types: bool = True
) -> set[str]:
    """Return the rooms modules one module imports, at module level or inside functions.

    With for_types=False the imports under `if TYPE_CHECKING:` (never run) are left out.
    """
    tree = ast.parse(path.read_text(), filename=str(path))
    skipped = set() if for_types else _type_checking_only(tree)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
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


def test_no_module_of_the_production_packages_imports_a_cycle():
    # One graph over all of them, so that a cycle through two packages counts too.
    modules = _package_modules(PRODUCTION_PACKAGES)
    graph = {name: _import_edges(name, path, modules) for name, path in modules.items()}
    # The walk sees imports inside functions too, and the seam modules it must.
    assert "rooms.outbox" in graph["rooms.services.common"]
    assert "rooms.services" in graph["rooms.services.restore"]
    assert "sandbox.activity_seed" in graph["sandbox.activity"]
    assert {"staff.lockout", "portal.settings"} <= modules.keys()

    assert _cycles(graph) == []


def test_every_rooms_model_lives_in_a_feature_module_and_is_re_exported_by_name():
    from django.apps import apps

    import rooms.models

    package = ROOT / "rooms" / "models"
    assert (package / "__init__.py").exists()
    tree = ast.parse((package / "__init__.py").read_text())
    body = tree.body[1:] if ast.get_docstring(tree) else tree.body
    # The package's __init__ defines nothing: only `from rooms.models.x import Y as Y` lines.
    assert all(isinstance(node, ast.ImportFrom) for node in body)
    exported = {}
    for node in body:
        assert node.module and node.module.startswith("rooms.models.") and not node.level
        for alias in node.names:
            assert alias.asname == alias.name, f"{alias.name} is not re-exported by its name"
            exported[alias.name] = node.module

    models = list(apps.get_app_config("rooms").get_models())
    assert len(models) >= 12
    for model in models:
        assert model._meta.app_label == "rooms"
        assert model.__module__.startswith("rooms.models."), model
        assert exported.get(model.__name__) == model.__module__, model
        assert getattr(rooms.models, model.__name__) is model
    assert not {"models.py", "activity_models.py", "recording_models.py"} & {
        p.name for p in (ROOT / "rooms").iterdir()
    }
    for path in package.glob("*.py"):
        assert len(path.read_text().splitlines()) < 600, path.name


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


def test_the_cycle_finder_sees_a_cycle_through_two_packages(tmp_path):
    for package in ("rooms", "sandbox"):
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / "sandbox" / "a.py").write_text("from rooms.b import thing\n")
    (tmp_path / "rooms" / "b.py").write_text("def later():\n    import sandbox.a\n")
    (tmp_path / "rooms" / "c.py").write_text("from rooms import b\n")
    modules = _package_modules(("rooms", "sandbox"), tmp_path)
    graph = {name: _import_edges(name, path, modules) for name, path in modules.items()}

    assert _cycles(graph) == [["rooms.b", "sandbox.a"]]


# --- imports run one way, down the layers ------------------------------------------------

# Each module of the portal's apps sits in one layer (the longest matching prefix wins); a
# module may import its own layer and the layers below, never one above. docs/architecture.md
# draws the same map. A module that matches no prefix fails the rule, so a new one is placed
# on purpose.
VALUES, CLIENT, MODELS, CORE, FEATURES, ENTRY = range(6)
LAYERS = {
    # Plain value helpers that import nothing of the project: everything may use them.
    "rooms": VALUES,  # the package itself: an empty __init__
    "rooms.jsontext": VALUES,
    "rooms.strictjson": VALUES,
    "rooms.secrets": VALUES,
    "rooms.connections": VALUES,
    "rooms.observations": VALUES,
    # The SignalWire client: HTTP, pages, payload shapes and errors.
    "rooms.signalwire": CLIENT,
    # The models, and the validator one of their fields carries.
    "rooms.models": MODELS,
    "rooms.stream_urls": MODELS,
    # The shared core below services, sync and selectors.
    "rooms.audit": CORE,
    "rooms.bulk_sql": CORE,
    "rooms.intents": CORE,
    "rooms.locks": CORE,
    "rooms.outbox": CORE,
    "rooms.registry": CORE,
    "rooms.signals": CORE,
    # Services (writes that reach SignalWire), the sync engine and selectors (reads).
    "rooms.services": FEATURES,
    "rooms.sync": FEATURES,
    "rooms.selectors": FEATURES,
    # What Django, Celery and people call: admin, tasks, commands, views and app wiring.
    "rooms.admin": ENTRY,
    "rooms.tasks": ENTRY,
    "rooms.management": ENTRY,
    "rooms.templatetags": ENTRY,
    "rooms.views": ENTRY,
    "rooms.health": ENTRY,
    "rooms.metrics": ENTRY,
    "rooms.middleware": ENTRY,
    "rooms.checks": ENTRY,
    "rooms.apps": ENTRY,
    "staff": ENTRY,
}
# Debt: "importer -> imported" edges that still run up the layers. A new one fails the rule,
# and an entry goes once it is fixed (none left today).
UPWARD_IMPORTS_TO_FIX: set[str] = set()


def _layer(module: str, layers: dict[str, int]) -> int | None:
    """Return the layer of a module by its longest prefix in the map, None when unmapped."""
    parts = module.split(".")
    for end in range(len(parts), 0, -1):
        prefix = ".".join(parts[:end])
        if prefix in layers:
            return layers[prefix]
    return None


def _upward_imports(
    root: Path = ROOT, layers: dict[str, int] = LAYERS
) -> tuple[set[str], list[str]]:
    """Return the edges that import a higher layer, and the modules no layer covers."""
    modules = {
        name: path
        for name, path in _package_modules(("rooms", "staff"), root).items()
        if ".migrations" not in name
    }
    upward: set[str] = set()
    unmapped = sorted(name for name in modules if _layer(name, layers) is None)
    for name, path in modules.items():
        own = _layer(name, layers)
        for target in _import_edges(name, path, modules, for_types=False):
            theirs = _layer(target, layers)
            if own is not None and theirs is not None and theirs > own:
                upward.add(f"{name} -> {target}")
    return upward, unmapped


def test_imports_run_down_the_layers_beyond_the_listed_debt():
    upward, unmapped = _upward_imports()

    assert unmapped == []
    assert sorted(upward - UPWARD_IMPORTS_TO_FIX) == []
    # A debt paid off leaves the list too, so the list only ever shrinks.
    assert sorted(UPWARD_IMPORTS_TO_FIX - upward) == []


def test_the_layer_rule_sees_upward_imports_at_any_depth_but_not_for_types_only(tmp_path):
    package = tmp_path / "rooms"
    (package / "admin").mkdir(parents=True)
    (tmp_path / "staff").mkdir()
    (tmp_path / "staff" / "__init__.py").write_text("")
    for folder in (package, package / "admin"):
        (folder / "__init__.py").write_text("")
    (package / "models.py").write_text("def later():\n    from rooms.admin import site\n")
    (package / "core.py").write_text(
        "from typing import TYPE_CHECKING\n\nfrom rooms import models\n\n"
        "if TYPE_CHECKING:\n    from rooms.admin import site\n"
    )
    (package / "admin" / "site.py").write_text("from rooms import core, models\n")
    (package / "loose.py").write_text("")
    layers = {"rooms": VALUES, "rooms.models": MODELS, "rooms.core": CORE,
              "rooms.admin": ENTRY, "staff": ENTRY}

    upward, unmapped = _upward_imports(tmp_path, layers)

    assert upward == {"rooms.models -> rooms.admin.site"}
    assert unmapped == []
    del layers["rooms"]
    assert _upward_imports(tmp_path, layers)[1] == ["rooms", "rooms.loose"]


# --- request state rides in a context variable or the form, not on the request ----------


# Attributes Django itself documents for a view to set (admin views set current_app).
DJANGO_REQUEST_ATTRIBUTES = {"current_app", "urlconf"}


def _request_attribute_writes(path: Path) -> list[str]:
    """Return line: target for each attribute set on a name called `request`.

    Django's own documented ones (DJANGO_REQUEST_ATTRIBUTES) are left out.
    """
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        targets = (
            node.targets if isinstance(node, ast.Assign)
            else [node.target] if isinstance(node, ast.AnnAssign | ast.AugAssign) else []
        )
        for target in targets:
            if (
                isinstance(target, ast.Attribute)
                and isinstance(target.value, ast.Name)
                and target.value.id == "request"
                and target.attr not in DJANGO_REQUEST_ATTRIBUTES
            ):
                found.append(f"{node.lineno}: {ast.unparse(target)}")
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "setattr"
            and node.args
            and isinstance(node.args[0], ast.Name)
            and node.args[0].id == "request"
        ):
            found.append(f"{node.lineno}: {ast.unparse(node)}")
    return found


def test_no_app_code_sticks_state_on_the_request():
    offenders = []
    for package in PORTAL_PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            where = path.relative_to(ROOT).as_posix()
            offenders += [f"{where}:{w}" for w in _request_attribute_writes(path)]
    assert offenders == []


def test_the_request_attribute_finder_sees_assignment_and_setattr(tmp_path):
    module = tmp_path / "m.py"
    module.write_text(
        "def view(request, response):\n"
        "    request._state = 1\n"
        "    setattr(request, 'seen', True)\n"
        "    request.session['k'] = 1\n"
        "    response.status_code = 200\n"
        "    request.current_app = 'admin'\n"
    )

    assert _request_attribute_writes(module) == [
        "2: request._state", "3: setattr(request, 'seen', True)"
    ]


# --- no production module grows past a size one can read ----------------------------------

MAX_MODULE_LINES = 600
# Debt: production modules still over the limit, each to be split. A new one fails the rule,
# and an entry goes once its module is back under the limit (none left today).
OVERSIZED_MODULES_TO_SPLIT: set[str] = set()


def _oversized_modules(root: Path = ROOT) -> set[str]:
    """Return the production modules (migrations left out) over MAX_MODULE_LINES lines."""
    found = set()
    for package in PRODUCTION_PACKAGES:
        for path in (root / package).rglob("*.py"):
            if "migrations" in path.relative_to(root).parts:
                continue
            if len(path.read_text().splitlines()) > MAX_MODULE_LINES:
                found.add(path.relative_to(root).as_posix())
    return found


def test_no_production_module_is_over_the_line_limit_beyond_the_listed_debt():
    found = _oversized_modules()

    assert sorted(found - OVERSIZED_MODULES_TO_SPLIT) == []
    # A module split under the limit leaves the list too, so the list only ever shrinks.
    assert sorted(OVERSIZED_MODULES_TO_SPLIT - found) == []


def test_the_line_limit_counts_every_production_package_and_skips_migrations(tmp_path):
    for package in PRODUCTION_PACKAGES:
        (tmp_path / package / "migrations").mkdir(parents=True)
        (tmp_path / package / "short.py").write_text("x = 1\n" * MAX_MODULE_LINES)
        (tmp_path / package / "long.py").write_text("x = 1\n" * (MAX_MODULE_LINES + 1))
        (tmp_path / package / "migrations" / "0001_initial.py").write_text("x = 1\n" * 900)
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_long.py").write_text("x = 1\n" * 900)

    assert _oversized_modules(tmp_path) == {f"{p}/long.py" for p in PRODUCTION_PACKAGES}


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


# Directories that are not the project's own text: tools' caches, the virtualenv, build output.
NOT_THE_PROJECT = {
    ".git", ".venv", "__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache",
    ".hypothesis", "staticfiles", "artifacts", ".run", "node_modules",
}
# A design document outside the repository, cited by name or by its numbered sections.
OUTSIDE_DOCUMENT = re.compile(r"\bdesign\.md\b|\bDESIGN\s+(?:behaviou?r\s+)?\d", re.IGNORECASE)


def _project_text_files(root: Path):
    """Yield every text file of the project under root (code, templates, docs, config)."""
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = sorted(d for d in subfolders if d not in NOT_THE_PROJECT)
        for name in sorted(files):
            path = Path(folder) / name
            try:
                yield path, path.read_text(encoding="utf-8")
            except UnicodeDecodeError:  # a binary file (an image, a database) cites nothing
                continue


def _citations_of_an_outside_document(root: Path) -> list[str]:
    """Return file:line for each citation of a design document the repository does not hold."""
    found = []
    for path, text in _project_text_files(root):
        for number, line in enumerate(text.splitlines(), 1):
            if OUTSIDE_DOCUMENT.search(line):
                found.append(f"{path.relative_to(root)}:{number}")
    return found


def test_no_file_cites_a_design_document_the_repository_does_not_hold():
    assert (ROOT / "rooms" / "intents.py") in {p for p, _ in _project_text_files(ROOT)}
    assert (ROOT / "README.md") in {p for p, _ in _project_text_files(ROOT)}

    assert _citations_of_an_outside_document(ROOT) == []


def test_the_citation_finder_sees_code_comments_templates_and_prose(tmp_path):
    word = "DESIGN"  # spelt apart, so this file does not cite it itself
    (tmp_path / "rooms").mkdir()
    (tmp_path / "rooms" / "a.py").write_text(f"x = 1  # see {word} 9\n")
    (tmp_path / "rooms" / "b.html").write_text(f"{{# as {word} behaviour 2 says #}}\n")
    (tmp_path / "README.md").write_text(f"Intro.\n\nRead {word.lower()}.md first.\n")
    (tmp_path / "rooms" / "c.py").write_text(f"# A design of 8 parts; {word}ER 4.\n")
    (tmp_path / ".venv").mkdir()
    (tmp_path / ".venv" / "d.py").write_text(f"# {word} 1\n")

    assert _citations_of_an_outside_document(tmp_path) == [
        "README.md:3", "rooms/a.py:1", "rooms/b.html:1"
    ]


# --- private names stay in their module -------------------------------------------------

# Every package of the project whose Python files the private-name rules read.
PROJECT_PACKAGES = ("rooms", "portal", "staff", "sandbox", "bench", "tests")
# The modules that make up the SignalWire client: only they use its private names.
CLIENT_MODULES = ("rooms/signalwire/session.py", "rooms/signalwire/pages.py",
                  "rooms/signalwire/client.py")
# Debt: underscore names still taken from another module of the project. Each entry is
# "importing file: module.name"; a new one fails the rule, and an entry goes once it is fixed.
PRIVATE_IMPORTS_TO_FIX: set[str] = set()


def _project_python_files(root: Path = ROOT) -> dict[str, Path]:
    """Map each Python module of the project (migrations left out) to its file."""
    modules = {}
    for package in PROJECT_PACKAGES:
        for path in (root / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _private_imports(name: str, path: Path, modules: dict[str, Path], root: Path) -> set[str]:
    """Return "file: module.name" for each underscore name the file takes from another module.

    Both `from module import _name` and `module._name` after `import module` (or
    `from package import module`) count.
    """
    tree = ast.parse(path.read_text(), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    where = path.relative_to(root).as_posix()
    found: set[str] = set()
    module_names: dict[str, str] = {}  # local name -> project module it is bound to
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in modules:
                    module_names[alias.asname or alias.name] = alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            if base not in modules or base == name:
                continue
            for alias in node.names:
                if f"{base}.{alias.name}" in modules:
                    module_names[alias.asname or alias.name] = f"{base}.{alias.name}"
                elif _private(alias.name):
                    found.add(f"{where}: {base}.{alias.name}")
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and _private(node.attr)
            and isinstance(node.value, ast.Name)
            and node.value.id in module_names
            and module_names[node.value.id] != name
        ):
            found.add(f"{where}: {module_names[node.value.id]}.{node.attr}")
    return found


def _all_private_imports(root: Path = ROOT) -> set[str]:
    modules = _project_python_files(root)
    found: set[str] = set()
    for name, path in modules.items():
        found |= _private_imports(name, path, modules, root)
    return found


def test_no_module_takes_an_underscore_name_from_another_beyond_the_listed_debt():
    found = _all_private_imports()

    assert sorted(found - PRIVATE_IMPORTS_TO_FIX) == []
    # A debt paid off leaves the list too, so the list only ever shrinks.
    assert sorted(PRIVATE_IMPORTS_TO_FIX - found) == []


def test_the_private_import_finder_sees_each_way_of_taking_a_private_name(tmp_path):
    (tmp_path / "rooms" / "sub").mkdir(parents=True)
    (tmp_path / "rooms" / "__init__.py").write_text("")
    (tmp_path / "rooms" / "sub" / "__init__.py").write_text("")
    (tmp_path / "rooms" / "core.py").write_text("_hidden = 1\nshown = 2\n_own = _hidden\n")
    (tmp_path / "rooms" / "a.py").write_text("from rooms.core import _hidden, shown\n")
    (tmp_path / "rooms" / "b.py").write_text(
        "from rooms import core\nimport rooms.core as c\n\n"
        "def f():\n    return core._hidden, c._other, core.__name__, core.shown\n"
    )
    (tmp_path / "rooms" / "sub" / "d.py").write_text("from ..core import _hidden\n")
    (tmp_path / "rooms" / "e.py").write_text("from os import _exit\nfrom typing import Any\n")

    assert _all_private_imports(tmp_path) == {
        "rooms/a.py: rooms.core._hidden",
        "rooms/b.py: rooms.core._hidden",
        "rooms/b.py: rooms.core._other",
        "rooms/sub/d.py: rooms.core._hidden",
    }


def _client_private_names() -> set[str]:
    """Return the underscore attributes the SignalWire client classes define or set."""
    names: set[str] = set()
    for relative in CLIENT_MODULES:
        tree = ast.parse((ROOT / relative).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and _private(node.name):
                names.add(node.name)
            elif (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "self"
                and _private(node.attr)
            ):
                names.add(node.attr)
    return names


def _client_private_uses(path: Path, private: set[str]) -> list[str]:
    """Return line: expression for each use of a client private name not through self/cls."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in sorted(ast.walk(tree), key=lambda n: getattr(n, "lineno", 0)):
        if (
            isinstance(node, ast.Attribute)
            and node.attr in private
            and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))
        ) or (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("getattr", "setattr", "hasattr")
            and len(node.args) > 1
            and isinstance(node.args[1], ast.Constant)
            and node.args[1].value in private
        ):
            found.append(f"{node.lineno}: {ast.unparse(node)}")
    return found


def test_only_the_client_itself_touches_the_client_private_names():
    private = _client_private_names()
    assert {"_send", "_object", "_delete"} <= private

    offenders = []
    for path in _project_python_files().values():
        relative = path.relative_to(ROOT).as_posix()
        if relative in CLIENT_MODULES:
            continue
        offenders += [f"{relative}:{use}" for use in _client_private_uses(path, private)]
    assert offenders == []


def test_the_client_private_finder_sees_an_object_a_class_and_getattr(tmp_path):
    module = tmp_path / "m.py"
    module.write_text(
        "def f(client, self):\n"
        "    client._send('GET', '/')\n"
        "    SignalWireClient._object(client, 'GET', '/')\n"
        "    getattr(client, '_delete')\n"
        "    self._send('GET', '/')\n"
        "    client.get_object('/')\n"
    )

    assert _client_private_uses(module, {"_send", "_object", "_delete"}) == [
        "2: client._send",
        "3: SignalWireClient._object",
        "4: getattr(client, '_delete')",
    ]


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
