"""The import layers hold: ``shared/contracts ← shared/domain ← shared/infra ← services/* ←
shared/ops``, no service imports another, and a domain model (with everything it imports from
the project) loads no web framework, database driver or broker.

``shared/ops`` is the operator layer on top of the services, not a floor beneath them: its
reconciliation checks each escrow with the payment service's own ledger invariant (defined
once, where the money is kept) and its configuration reference reads every service's
settings. So it may import services, and nothing in the floor or the services may import it.

Around the product: production code (``shared``, ``services``) imports no tests, benchmarks or
deployment scripts, and benchmarks and deployment scripts import no tests (what both need,
such as the MongoDB-wire server process, lives in ``deploy/local``)."""

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
AROUND = {module_name(p): p for top in ("bench", "deploy", "tests")
          for p in (REPO / top).rglob("*.py")}
# What each top level outside production may not import: benchmarks and deployment scripts
# build on production code (and deploy/local's harness), never on the tests.
NOT_IMPORTED_BY = {"bench": ("tests",), "deploy": ("tests", "bench")}


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

    top = name.split(".")[0]
    if top in NOT_IMPORTED_BY:
        return [i for prefix in NOT_IMPORTED_BY[top] for i in starts(prefix)]
    around = starts("tests") + starts("bench") + starts("deploy")
    if name.startswith("shared.contracts"):
        return around + starts("shared.domain") + starts("shared.infra") + starts("shared.ops") + starts("services")
    if name.startswith("shared.domain"):
        return around + starts("shared.infra") + starts("shared.ops") + starts("services")
    if name.startswith("shared.infra"):
        return around + starts("shared.ops") + starts("services")
    if name.startswith("shared.ops"):
        return around
    if name.startswith("services."):
        own = ".".join(name.split(".")[:2])
        return around + starts("shared.ops") + sorted(
            i for i in starts("services") if not i.startswith(own) and i not in COMPOSERS
            and name not in COMPOSERS)
    return around


@pytest.mark.parametrize("name", sorted(MODULES))
def test_layers(name: str) -> None:
    assert layer_violations(name, imports_of(MODULES[name])) == []


@pytest.mark.parametrize("name", sorted(m for m in AROUND if m.split(".")[0] in NOT_IMPORTED_BY))
def test_benchmarks_and_deployment_import_no_tests(name: str) -> None:
    assert layer_violations(name, imports_of(AROUND[name])) == []


def test_no_test_double_lives_in_production_code() -> None:
    """Fakes belong to the tests: production modules hold the real thing and, where a seam is
    wanted, the ``Protocol`` it implements (the fast tests run the real stores over mongomock)."""
    doubles = {name: [node.name for node in ast.walk(ast.parse(path.read_text(), str(path)))
                      if isinstance(node, ast.ClassDef) and node.name.startswith(("InMemory", "Fake", "Stub"))]
               for name, path in MODULES.items()}
    assert {k: v for k, v in doubles.items() if v} == {}


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


def test_the_check_catches_imports_against_the_operator_layer_and_of_tests() -> None:
    assert layer_violations("shared.infra.sweep", {"shared.ops.records"}) == ["shared.ops.records"]
    assert layer_violations("services.payment.app", {"shared.ops"}) == ["shared.ops"]
    assert layer_violations("shared.ops.reconcile", {"services.payment.domain"}) == []
    assert layer_violations("bench.store", {"tests.support.mongo_server"}) == ["tests.support.mongo_server"]
    assert layer_violations("bench.store", {"deploy.local.mongo_server"}) == []
    assert layer_violations("deploy.local.demo", {"bench.actors"}) == ["bench.actors"]
    assert layer_violations("services.catalogue", {"tests.support.memory"}) == ["tests.support.memory"]
    assert layer_violations("shared.infra.store", {"bench.support"}) == ["bench.support"]


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
