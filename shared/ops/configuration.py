"""The configuration reference (docs/configuration.md), generated from the settings
classes: every setting, its environment variable, its default and what it means (the
field's description, else the comment above or beside it in the class)."""

from __future__ import annotations

import inspect
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from pydantic_settings import BaseSettings

from shared.infra.settings import ServiceSettings

from services.catalogue import SERVICES, settings_class

DOCUMENT = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"
_FIELD = re.compile(r"^    ([a-z_][a-z0-9_]*)\s*:")


def _comments(cls: type[BaseSettings]) -> dict[str, str]:
    """Each field's comment: the comment block above it, which also covers the fields right
    after it up to a blank line or the next comment, plus the field's inline comment."""
    found: dict[str, str] = {}
    block: list[str] = []
    in_comment = False
    for line in inspect.getsource(cls).splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            block = (block if in_comment else []) + [stripped.lstrip("#").strip()]
            in_comment = True
            continue
        in_comment = False
        match = _FIELD.match(line)
        if match:
            inline = line.split("  # ", 1)[1].strip() if "  # " in line else ""
            found[match.group(1)] = " ".join([*block, inline]).strip()
        else:
            block = []
    return found


def _default(value: Any) -> str:
    if isinstance(value, SecretStr):
        return "a development value (must be set outside development)"
    if isinstance(value, timedelta):
        seconds = int(value.total_seconds())
        for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
            if seconds and seconds % size == 0:
                n = seconds // size
                return f"{n} {unit}{'s' if n != 1 else ''}"
        return f"{value.total_seconds():g} seconds"
    if value is None:
        return "unset"
    return f"`{getattr(value, 'value', value)}`"


def _rows(cls: type[BaseSettings], names: list[str]) -> list[dict[str, str]]:
    comments: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if isinstance(klass, type) and issubclass(klass, BaseSettings) and klass is not BaseSettings:
            comments.update({k: v for k, v in _comments(klass).items() if v})
    rows = []
    for name in names:
        info = cls.model_fields[name]
        rows.append({"setting": name.upper(), "default": _default(info.default),
                     "description": info.description or comments.get(name, "")})
    return rows


def settings_table() -> dict[str, list[dict[str, str]]]:
    """Settings every service reads, then each service's own (or its own default)."""
    common = list(ServiceSettings.model_fields)
    table = {"every service": _rows(ServiceSettings, common)}
    for name in SERVICES:
        cls = settings_class(name)
        own = [f for f in cls.model_fields if f not in common
               or cls.model_fields[f].default != ServiceSettings.model_fields[f].default]
        table[name] = _rows(cls, own)
    return table


def reference() -> str:
    lines = ["# Configuration reference", "",
             "Generated from the settings classes by `python -m shared.ops config-reference --write`;",
             "a test fails when it is stale. Every setting is an environment variable. Durations",
             "are seconds (`90`) or ISO 8601 (`P5D`, `PT2M`).", ""]
    for scope, rows in settings_table().items():
        lines += [f"## {scope}", "", "| setting | default | meaning |", "| --- | --- | --- |"]
        lines += [f"| `{r['setting']}` | {r['default']} | {r['description'] or '—'} |" for r in rows]
        lines.append("")
    return "\n".join(lines)


def is_stale() -> bool:
    return not DOCUMENT.exists() or DOCUMENT.read_text() != reference()


def undocumented() -> list[str]:
    return [f"{scope}: {r['setting']}" for scope, rows in settings_table().items()
            for r in rows if not r["description"]]
