"""One log format for every service: JSON lines (or readable text for a developer's
terminal, ``LOG_FORMAT=text``), uvicorn's and FastStream's loggers included, each line
naming the service and what the context knows (correlation id, order, event)."""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any, Literal

from shared.infra import context

LogFormat = Literal["json", "text"]

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# Attributes every LogRecord has; anything else was passed as ``extra`` and is kept.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime",
                                                                           "taskName"}


def _plain(text: str) -> str:
    return _ANSI.sub("", text)


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname, "logger": record.name, "service": self.service,
            "message": _plain(record.getMessage()),
        }
        line.update(context.current())
        line.update({k: v for k, v in _extras(record).items() if k not in line})
        if record.exc_info:
            line["exception"] = _plain(self.formatException(record.exc_info))
        return json.dumps(line, default=str)


class TextFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__("%(asctime)s %(levelname)-7s " + service + " %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = {**context.current(), **_extras(record)}
        return text + ("  " + " ".join(f"{k}={v}" for k, v in fields.items()) if fields else "")


def configure_logging(service: str, level: str = "INFO", fmt: LogFormat = "json") -> None:
    """Send every logger's records, through one handler on the root logger, to stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service) if fmt == "json" else TextFormatter(service))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # uvicorn and FastStream bring their own handlers and colours: route them to ours.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "faststream", "faststream.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
