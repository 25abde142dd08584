"""A Socket.IO request's query string, read as python-engineio reads it, without its cost.

Every Socket.IO request's query is read by the gate (``sid``, ``j``), by the
server (``sid``) and again by python-engineio (``urllib.parse.parse_qs``).
Socket.IO clients encode nothing in it, so the common case needs no decoding,
and the gate and the server share one reading (``request_query``).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

# The environ key of the request's query, as read: (QUERY_STRING, its fields).
QUERY = "whitelist.query"


def query_fields(query_string: str) -> dict[str, list[str]]:
    """``parse_qs(query_string, keep_blank_values=True)``, without its per-field
    decoding where nothing is encoded."""
    if "%" in query_string or "+" in query_string:
        return parse_qs(query_string, keep_blank_values=True)
    fields: dict[str, list[str]] = {}
    for field in query_string.split("&"):
        if field:
            name, _, value = field.partition("=")
            fields.setdefault(name, []).append(value)
    return fields


def request_query(environ: dict[str, Any]) -> dict[str, list[str]]:
    """``query_fields`` of the request's query string, read once a request.

    Kept with the string it was read from: a middleware that rewrites
    ``QUERY_STRING`` afterwards gets it read again. Read-only for its callers.
    """
    query_string = environ.get("QUERY_STRING", "")
    kept = environ.get(QUERY)
    if kept is not None and kept[0] is query_string:
        return kept[1]
    fields = query_fields(query_string)
    environ[QUERY] = (query_string, fields)
    return fields


def session_id(fields: dict[str, list[str]]) -> str | None:
    """The ``sid`` python-engineio serves the request with (its first non-blank value), or None."""
    return next((value for value in fields.get("sid", ()) if value), None)
