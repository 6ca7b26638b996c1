import json

from services.asyncapi import DOCUMENT, generate


def test_the_committed_asyncapi_document_matches_the_code():
    assert DOCUMENT.exists(), "docs/asyncapi.json is missing: run `make asyncapi`"
    assert json.loads(DOCUMENT.read_text()) == json.loads(generate()), \
        "docs/asyncapi.json is stale: run `make asyncapi` and commit it"


def test_every_event_is_documented():
    from shared.contracts.envelope import registered_events

    document = json.loads(generate())
    documented = {name.removesuffix("Message").split(":")[-1]
                  for name in document["components"]["messages"]}
    titles = json.dumps(document["components"]["schemas"])
    missing = [e.__name__ for e in registered_events() if f"{e.__name__}Message" not in titles]
    assert documented and not missing, f"events without a documented message: {missing}"
