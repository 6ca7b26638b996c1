"""The import layers hold: ``shared/contracts ← shared/domain ← shared/infra ← services/*``,
no service imports another, and a domain model (with everything it imports from the
project) loads no web framework, database driver or broker."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FORBIDDEN_IN_DOMAIN = ("shared.infra", "fastapi", "starlette", "pymongo", "faststream",
                       "aiokafka", "jwt", "httpx", "uvicorn")
# Modules that compose every service (the catalogue and the AsyncAPI generator) may import them all.
COMPOSERS = {"services", "services.catalogue", "services.asyncapi"}


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


MODULES = {module_name(p): p for top in ("shared", "services")
           for p in (REPO / top).rglob("*.py")}


def domain_modules() -> set[str]:
    """``shared.domain`` and every service's ``domain`` module or package, with every project
    module they import, transitively (a ledger module a domain model imports is domain too)."""
    todo = [m for m in MODULES if m.startswith("shared.domain")
            or (m.startswith("services.") and ".domain" in m)]
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo.extend(i for i in imports_of(MODULES[name]) if i in MODULES
                    and not i.startswith("shared.contracts"))
    return seen


def layer_violations(name: str, imported: set[str]) -> list[str]:
    def starts(prefix: str) -> list[str]:
        return sorted(i for i in imported if i == prefix or i.startswith(prefix + "."))

    if name.startswith("shared.contracts"):
        return starts("shared.domain") + starts("shared.infra") + starts("services")
    if name.startswith("shared.domain"):
        return starts("shared.infra") + starts("services")
    if name.startswith("shared.infra"):
        return starts("services")
    if name.startswith("services.") and name not in COMPOSERS:
        own = ".".join(name.split(".")[:2])
        return sorted(i for i in starts("services") if not i.startswith(own) and i not in COMPOSERS)
    return []


@pytest.mark.parametrize("name", sorted(MODULES))
def test_layers(name: str) -> None:
    assert layer_violations(name, imports_of(MODULES[name])) == []


def test_domain_modules_import_no_infrastructure() -> None:
    bad = {name: sorted(i for i in imports_of(MODULES[name])
                        if any(i == f or i.startswith(f + ".")
                               for f in FORBIDDEN_IN_DOMAIN))
           for name in domain_modules()}
    assert {k: v for k, v in bad.items() if v} == {}


def test_the_check_catches_a_domain_module_importing_infrastructure() -> None:
    assert layer_violations("shared.domain.x", {"shared.infra.store"}) == ["shared.infra.store"]
    assert layer_violations("services.order.api", {"services.payment.domain"}) == [
        "services.payment.domain"]
    assert layer_violations("services.order.api", {"services.order.domain"}) == []


def test_importing_the_domain_models_loads_no_framework() -> None:
    domains = sorted(m for m in domain_modules() if m.startswith("services."))
    assert domains, "no service domain module found"
    code = ("import sys\n" + "".join(f"import {m}\n" for m in domains)
            + "print(sorted({m.split('.')[0] for m in sys.modules} & "
            + repr({"fastapi", "starlette", "pymongo", "faststream", "aiokafka", "jwt", "uvicorn"})
            + "))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"
