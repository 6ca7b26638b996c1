"""The platform's AsyncAPI document, generated from the five services' brokers: every
topic, who publishes and who consumes it, and the schema of every message.

    python -m services.asyncapi --write   # regenerate docs/asyncapi.json
    python -m services.asyncapi --check   # exit 1 if the committed document is stale
    python -m services.asyncapi --compat  # exit 1 if it breaks the released document
    python -m services.asyncapi --release # make the current document the released one

``docs/asyncapi.released.json`` is the contract integrators hold us to; a release
replaces it once the compatibility check passes (or on a deliberate major version).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from shared.infra.compatibility import breaking_changes
from shared.infra.specification import asyncapi_document

from services.catalogue import SERVICES, build, settings_class

DEFAULT_KAFKA = "127.0.0.1:9092"
DOCUMENT = Path(__file__).resolve().parents[1] / "docs" / "asyncapi.json"
RELEASED = DOCUMENT.with_name("asyncapi.released.json")
# The major version moves with a deliberate breaking release.
# 2.0.0: a party carries no email any more (each registers its own contact with notify);
# roll notify out first: it reads 1.x events too, ignoring their emails.
CONTRACT_VERSION = "2.0.0"


def generate() -> str:
    """The document for the default deployment, whatever this shell's environment says."""
    runtimes = [build(name, settings_class(name)(kafka_bootstrap_servers=DEFAULT_KAFKA,
                                                 topic_prefix="escrow", escrow_env="development"))
                for name in SERVICES]
    return json.dumps(asyncapi_document(runtimes, version=CONTRACT_VERSION), indent=2, sort_keys=True) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", action="store_true")
    parser.add_argument("--check", action="store_true")
    parser.add_argument("--compat", action="store_true")
    parser.add_argument("--release", action="store_true")
    args = parser.parse_args()
    document = generate()
    if args.write:
        DOCUMENT.parent.mkdir(exist_ok=True)
        DOCUMENT.write_text(document)
        print(f"wrote {DOCUMENT}")
    elif args.release:
        RELEASED.write_text(document)
        print(f"wrote {RELEASED}")
    elif args.compat:
        problems = breaking_changes(json.loads(RELEASED.read_text()), json.loads(document))
        if problems:
            sys.exit("breaking changes against the released AsyncAPI document:\n  "
                     + "\n  ".join(problems))
        print("compatible with the released AsyncAPI document")
    elif args.check:
        if not DOCUMENT.exists() or DOCUMENT.read_text() != document:
            sys.exit(f"{DOCUMENT} is stale: run `make asyncapi`")
    else:
        print(document)


if __name__ == "__main__":
    main()
