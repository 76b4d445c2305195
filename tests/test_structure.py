"""The shape of the code: the sandbox stands apart from the portal's own modules."""

import ast
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
