"""The platform's AsyncAPI document, generated from the five services' brokers: every
topic, who publishes and who consumes it, and the schema of every message.

    python -m services.asyncapi --write   # regenerate docs/asyncapi.json
    python -m services.asyncapi --check   # exit 1 if the committed document is stale
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from faststream.specification import AsyncAPI

from services.catalogue import SERVICES, build, settings_class

DEFAULT_KAFKA = "127.0.0.1:9092"
DOCUMENT = Path(__file__).resolve().parents[1] / "docs" / "asyncapi.json"


def generate() -> str:
    """The document for the default deployment, whatever this shell's environment says."""
    brokers = [build(name, settings_class(name)(kafka_bootstrap_servers=DEFAULT_KAFKA,
                                                topic_prefix="escrow", escrow_env="development")).broker
               for name in SERVICES]
    spec = AsyncAPI(*brokers, title="Escrow platform events", version="1.0.0",
                    description="Integration events of the escrow trade. Every message is an "
                                "envelope keyed by order id; see README.md.").to_specification()
    return json.dumps(spec.to_jsonable(), indent=2, sort_keys=True) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", action="store_true")
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    document = generate()
    if args.write:
        DOCUMENT.parent.mkdir(exist_ok=True)
        DOCUMENT.write_text(document)
        print(f"wrote {DOCUMENT}")
    elif args.check:
        if not DOCUMENT.exists() or DOCUMENT.read_text() != document:
            sys.exit(f"{DOCUMENT} is stale: run `make asyncapi`")
    else:
        print(document)


if __name__ == "__main__":
    main()
