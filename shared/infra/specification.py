"""The AsyncAPI document of one or several services, from their brokers, with what each
service receives spelled out: FastStream sees one raw subscriber per service, so the
events it actually takes from each topic are added here as the subscription's payload."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from faststream.specification import AsyncAPI
from pydantic import BaseModel

from shared.contracts.envelope import documented_envelope

if TYPE_CHECKING:
    from shared.infra.runtime import ServiceRuntime

TITLE = "Escrow platform events"
DESCRIPTION = ("Integration events of the escrow trade. Every message is an envelope keyed by "
               "order id; consumers ignore fields they do not know (see README.md).")


def asyncapi_document(runtimes: list[ServiceRuntime], version: str = "1.0.0") -> dict[str, Any]:
    spec = AsyncAPI(*(r.broker for r in runtimes), title=TITLE, version=version,
                    description=DESCRIPTION).to_specification()
    document: dict[str, Any] = spec.to_jsonable()
    for runtime in runtimes:
        _document_receiving(document, runtime)
    return document


def _document_receiving(document: dict[str, Any], runtime: ServiceRuntime) -> None:
    consumer = runtime.consumer
    if consumer is None:
        return
    events = [event for event, _handler in consumer.handlers.values()]
    retries = runtime.topics.retries(runtime.service)
    for topic in consumer.sources:
        taken = sorted((e for e in events if topic == retries
                        or runtime.topics.events(e.producer) == topic), key=lambda e: e.__name__)
        message = document["components"]["messages"].get(f"{runtime.service}-inbox:{topic}:SubscribeMessage")
        if message is None or not taken:
            continue
        refs = [_add_schema(document, documented_envelope(e)) for e in taken]
        message["payload"] = {"oneOf": refs}
    document["components"].get("schemas", {}).pop("EmptyPayload", None)


def _add_schema(document: dict[str, Any], model: type[BaseModel]) -> dict[str, str]:
    schemas = document["components"].setdefault("schemas", {})
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, definition in schema.pop("$defs", {}).items():
        schemas.setdefault(name, definition)
    schemas.setdefault(model.__name__, schema)
    return {"$ref": f"#/components/schemas/{model.__name__}"}
