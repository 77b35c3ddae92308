"""Logging set-up of every FELES process: readable text, or one JSON object per line for machines."""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

#: Attribute of a LogRecord holding structured fields (pass `extra={FIELDS: {...}}`).
FIELDS = "feles"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, the process's name if given, message and the record's
    structured fields."""

    def __init__(self, process: str | None = None) -> None:
        super().__init__()
        self.process = process

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
        }
        if self.process:
            document["process"] = self.process
        document["message"] = record.getMessage()
        document.update(getattr(record, FIELDS, {}))
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        return json.dumps(document, default=str)


def configure_logging(level: str = "info", log_format: str = "text", process: str | None = None) -> None:
    """Log to stderr at `level` as `text` or `json`; HTTP client chatter only from WARNING up.

    `process` names the process in every line (`logger[process]:` in text, a "process" field in JSON): the
    workers of `feles worker --processes` may share one stderr.
    """
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        formatter: logging.Formatter = JsonFormatter(process)
        formatter.converter = time.gmtime  # the "Z" in the timestamps means UTC
    else:
        tag = f"[{process}]" if process else ""
        formatter = logging.Formatter(f"%(asctime)s %(levelname)s %(name)s{tag}: %(message)s")
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # One line per request (every long-poll) would drown the round lines.
    logging.getLogger("httpx").setLevel(logging.WARNING)
