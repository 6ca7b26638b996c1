"""One log format for every service: JSON lines (or readable text for a developer's
terminal, ``LOG_FORMAT=text``), uvicorn's and FastStream's loggers included, each line
naming the service and what the context knows (correlation id, order, event)."""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from collections.abc import Callable
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


# Libraries that repeat one line many times a second while a server is away (aiokafka
# retries its connection and metadata in tight loops while the broker is down).
NOISY_LOGGERS = ("aiokafka", "kafka")
REPEAT_WINDOW_SECONDS = 30.0


class RepeatFilter(logging.Filter):
    """Lets a noisy library's line through at most once per ``window`` seconds per logger,
    level and message template (the arguments vary: node ids, errors); the next one let
    through says how many like it were suppressed meanwhile (``suppressed`` field). Other
    loggers' lines always pass: each of the platform's own lines is one fact."""

    def __init__(self, window: float = REPEAT_WINDOW_SECONDS, loggers: tuple[str, ...] = NOISY_LOGGERS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.window = window
        self.loggers = loggers
        self.clock = clock
        self._last: dict[tuple[str, int, str], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        name = record.name
        if not any(name == prefix or name.startswith(prefix + ".") for prefix in self.loggers):
            return True
        key = (name, record.levelno, str(record.msg))
        now = self.clock()
        seen = self._last.get(key)
        if seen is not None and now - seen[0] < self.window:
            self._last[key] = (seen[0], seen[1] + 1)
            return False
        self._last[key] = (now, 0)
        if seen is not None and seen[1]:
            record.suppressed = seen[1]
            record.msg = f"{record.msg} [{seen[1]} like it suppressed in the last {now - seen[0]:.0f}s]"
        return True


def configure_logging(service: str, level: str = "INFO", fmt: LogFormat = "json") -> None:
    """Send every logger's records, through one handler on the root logger, to stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service) if fmt == "json" else TextFormatter(service))
    handler.addFilter(RepeatFilter())
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
