import inspect
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


def test_descriptions_do_not_depend_on_how_python_indents_docstrings():
    """Python 3.13 dedents docstrings when compiling, 3.11 keeps their indentation: the
    document must read the same on both, so every description is already cleaned."""
    def descriptions(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "description" and isinstance(value, str):
                    yield value
                else:
                    yield from descriptions(value)
        elif isinstance(node, list):
            for item in node:
                yield from descriptions(item)

    found = list(descriptions(json.loads(generate())))
    indented = [d for d in found if d != inspect.cleandoc(d)]
    assert found and not indented, f"descriptions carrying a docstring's indentation: {indented[:3]}"
