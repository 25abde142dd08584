"""A ``logging.Formatter`` that writes one JSON object per line, for log shippers.

The decision log's fields (``record.decision``, ``whitelist.reporting.decision_log``)
become top-level keys. In ``LOGGING``:
``"formatters": {"json": {"()": "whitelist.jsonlog.JSONFormatter"}}``.

Every value is escaped as ``whitelist.plainlog`` escapes a line (a client's
ESC reads ``\\x1b`` in the message, not a raw ESC once decoded; a traceback is
indented as there), and the line
itself holds no character that is not printable: ``json.dumps`` without
``ensure_ascii`` leaves DEL, C1 (NEL, U+0085) and U+2028/U+2029 raw, which
split the line for readers that honour Unicode line breaks.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

from whitelist.core.display import escaped, indented


class JSONFormatter(logging.Formatter):
    """``{"time", "level", "logger", "message", ...decision fields, "exception"}``."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": escaped(record.getMessage()),
        }
        fields = getattr(record, "decision", None)
        if isinstance(fields, dict):
            entry.update(
                {
                    key: escaped(value) if isinstance(value, str) else value
                    for key, value in fields.items()
                    if key not in entry
                }
            )
        if record.exc_info:
            entry["exception"] = indented(self.formatException(record.exc_info))
        return json_line(json.dumps(entry, default=str, ensure_ascii=False))


def json_line(text: str) -> str:
    """``text`` (JSON) with every character that is not printable as a ``\\uXXXX`` escape.

    ``json.dumps`` escaped C0 already; what is left can only stand inside a
    string, where the escape means the same character.
    """
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else _json_escape(char) for char in text)


def _json_escape(char: str) -> str:
    code = ord(char)
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    code -= 0x10000  # a UTF-16 surrogate pair, as JSON writes characters beyond the BMP
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"
