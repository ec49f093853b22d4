"""Structured logs: one JSON object (or one readable text line) per record.

A record about a request carries its ``request_id`` and ``trace_id`` (the W3C trace
id its spans carry too), given as ``extra`` fields; levels are the standard ones
(``observability.logs.level``, else ``server.log_level``). Nothing here redacts: the
callers never hand a log record a key, secret or masked value, and the tests grep the
logs for every key they used.
"""

from __future__ import annotations

import logging
import sys
import time

import orjson

# Record attributes that are not extra fields (uvicorn adds an ANSI-coloured copy of its message).
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "color_message",
}


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and value is not None:
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


class TextFormatter(logging.Formatter):
    """The same fields as ``JSONFormatter``, as one line for a terminal:
    ``TS LEVEL LOGGER MSG key=value ...``."""

    def format(self, record: logging.LogRecord) -> str:
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        parts = [
            f"{ts}.{int(record.msecs):03d}Z",
            record.levelname,
            record.name,
            record.getMessage(),
        ]
        for key, value in vars(record).items():
            if key not in _STANDARD and value is not None:
                text = (
                    value if isinstance(value, str) else orjson.dumps(value, default=str).decode()
                )
                parts.append(f"{key}={text}")
        line = " ".join(parts)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def configure_logging(level: str = "info", fmt: str = "json") -> None:
    """Send every logger (ours and the server's) to stderr as JSON (or text) lines."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(TextFormatter() if fmt == "text" else JSONFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # The gateway writes its own access log (observability.logs.requests) with the request's
    # story; uvicorn's would cost CPU on every request and say less.
    logging.getLogger("uvicorn.access").disabled = True
