"""Whether the event schemas of a new AsyncAPI document can replace the released ones
without breaking anybody reading the topics during a rolling deploy or a replay:

- every released message is still published, with the same envelope;
- no field a released reader needs (required there) disappears;
- no field becomes required that released producers did not always send;
- no field changes its type or constant, and no enumerated value disappears.

Adding optional fields and new messages is fine: readers ignore unknown fields."""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]


def breaking_changes(released: Schema, current: Schema) -> list[str]:
    problems: list[str] = []
    old_messages = _published(released)
    new_messages = _published(current)
    for name, old_ref in sorted(old_messages.items()):
        if name not in new_messages:
            problems.append(f"{name}: no longer published")
            continue
        _compare(released, _resolve(released, old_ref), current,
                 _resolve(current, new_messages[name]), name, problems, set())
    return problems


def _published(document: Schema) -> dict[str, Schema]:
    """The payload schema of every message a service publishes (not the inbox views)."""
    return {name: message["payload"] for name, message in document["components"]["messages"].items()
            if not name.split(":")[0].endswith("-inbox")}


def _resolve(document: Schema, schema: Schema) -> Schema:
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _variants(document: Schema, schema: Schema) -> list[Schema]:
    """``anyOf``/``oneOf`` alternatives (e.g. an optional field's ``X | None``), resolved."""
    alternatives = schema.get("anyOf") or schema.get("oneOf") or [schema]
    return [_resolve(document, a) for a in alternatives]


def _kind(schema: Schema) -> str:
    return str(schema.get("type", "object" if "properties" in schema else "any"))


def _counterpart(old: Schema, candidates: list[Schema]) -> Schema | None:
    """The new alternative that takes what the old one described."""
    for new in candidates:
        if "const" in old and new.get("const", old["const"]) != old["const"]:
            continue
        if _kind(old) == _kind(new) or "any" in (_kind(old), _kind(new)):
            return new
    return None


def _compare(old_doc: Schema, old: Schema, new_doc: Schema, new: Schema, where: str,
             problems: list[str], seen: set[tuple[int, int]]) -> None:
    if (id(old), id(new)) in seen:
        return
    seen.add((id(old), id(new)))
    candidates = _variants(new_doc, new)
    for old_variant in _variants(old_doc, old):
        new_variant = _counterpart(old_variant, candidates)
        if new_variant is None:
            shown = old_variant.get("const", _kind(old_variant))
            problems.append(f"{where}: {shown!r} is no longer accepted")
        else:
            _compare_one(old_doc, old_variant, new_doc, new_variant, where, problems, seen)


def _compare_one(old_doc: Schema, old: Schema, new_doc: Schema, new: Schema, where: str,
                 problems: list[str], seen: set[tuple[int, int]]) -> None:
    if "enum" in old:
        lost = set(old["enum"]) - set(new["enum"] if "enum" in new else old["enum"])
        if lost:
            problems.append(f"{where}: values {sorted(lost)} no longer allowed")
    if "items" in old and "items" in new:
        _compare(old_doc, old["items"], new_doc, new["items"], f"{where}[]", problems, seen)
    old_props, new_props = old.get("properties", {}), new.get("properties", {})
    old_required, new_required = set(old.get("required", [])), set(new.get("required", []))
    for field in sorted(old_required - set(new_props)):
        problems.append(f"{where}.{field}: removed, but released readers require it")
    for field in sorted(new_required - old_required):
        problems.append(f"{where}.{field}: newly required, but released producers may omit it")
    for field in sorted(set(old_props) & set(new_props)):
        _compare(old_doc, old_props[field], new_doc, new_props[field], f"{where}.{field}",
                 problems, seen)
