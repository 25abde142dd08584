"""Long-polling POSTs python-engineio cannot decode: refused before they reach it.

python-engineio decodes a POST's payload inside a bare ``except:`` that logs
"post request handler error" with a full traceback and answers 200: an empty
packet, bad base64 or JSON nested past Python's recursion limit wrote 20 lines
to the log per request, at the rate anyone cared to send them. Here such a
payload gets HTTP 400 and a bounded log line, and python-engineio reads the
same bytes from a fresh stream when it decodes.

JSON's nesting counts against the same recursion limit as Python's frames, and
python-engineio decodes a few frames deeper than this check: the check decodes
with ``HEADROOM_FRAMES`` fewer to spare, so no payload nested just deep enough
passes here and raises ``RecursionError`` there.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from engineio import payload

from whitelist.core.ratelimited_log import RateLimitedLog
from whitelist.engine.packets import payload_decodes_plainly

logger = logging.getLogger(__name__)
malformed_log = RateLimitedLog(logger)

T = TypeVar("T")

# Far more than the few frames between this check and python-engineio's decode.
HEADROOM_FRAMES = 64
# A payload with fewer brackets cannot nest deep enough to near the recursion limit: it
# is decoded without the extra frames, which cost 4 microseconds a POST.
SHALLOW_BRACKETS = 200


def with_frames_to_spare(frames: int, work: Callable[[], T]) -> T:
    """``work()``, called ``frames`` Python frames deeper than this call."""
    if frames <= 0:
        return work()
    return with_frames_to_spare(frames - 1, work)


def undecodable_post(environ: dict[str, Any], max_bytes: int) -> str | None:
    """Why this POST's payload is not Engine.IO, or None (then ``wsgi.input`` is rewound).

    A body over ``max_bytes`` is left to python-engineio, which refuses it unread.
    """
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return "Content-Length is not a number"
    if not 0 <= length <= max_bytes:
        return None
    try:
        body = environ["wsgi.input"].read(length)
    except OSError:  # gevent's and gunicorn's input raise when the client stops short
        return "the body ended before its Content-Length"
    environ["wsgi.input"] = io.BytesIO(body)
    try:
        text = body.decode("utf-8")
        if payload_decodes_plainly(text):
            return None
        brackets = body.count(b"[") + body.count(b"{")
        frames = 0 if brackets < SHALLOW_BRACKETS else HEADROOM_FRAMES
        with_frames_to_spare(frames, lambda: payload.Payload(encoded_payload=text))
    except Exception as error:  # what python-engineio would raise inside its handler
        malformed_log.log(
            "malformed polling payloads",
            logging.WARNING,
            "Refused a long-polling POST that is not an Engine.IO payload (%s)",
            type(error).__name__,
        )
        return f"not an Engine.IO payload ({type(error).__name__})"
    return None
