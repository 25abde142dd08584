"""A ``logging.Formatter`` that writes one JSON object per line, for log shippers.

The decision log's fields (``record.decision``, ``whitelist.reporting.decision_log``)
become top-level keys. In ``LOGGING``:
``"formatters": {"json": {"()": "whitelist.jsonlog.JSONFormatter"}}``.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime


class JSONFormatter(logging.Formatter):
    """``{"time", "level", "logger", "message", ...decision fields, "exception"}``."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "decision", None)
        if isinstance(fields, dict):
            entry.update({key: value for key, value in fields.items() if key not in entry})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)
