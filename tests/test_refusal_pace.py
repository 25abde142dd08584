"""Under a flood, refusals wait their turn (whitelist.core.refusal_pace): admitted work first.

The flood's effect on allowed visitors is measured by bench/hostile.py; here,
that each refusal past the burst waits its turn, in band and at the handshake,
and that nothing waits in threading mode, where a wait would hold a thread.
"""

from __future__ import annotations

import pytest
import socketio
from django.test import override_settings
from werkzeug.test import Client

from tests.clients import try_connect
from tests.inprocess import serving
from tests.test_wsgi import POLLING, REFUSED, Recorder
from whitelist.core.refusal_pace import RefusalPace
from whitelist.gate.origin_gate import OriginGate
from whitelist.models import AllowedOrigin
from whitelist.rules.cache import allowlist
from whitelist.server.guarded import REFUSAL_MAX_WAIT, GuardedServer

ALLOWED = "https://shop.example.com"


def test_refusals_past_the_burst_wait_their_turn() -> None:
    clock = [500.0]
    pace = RefusalPace(rate=10, burst=3, max_wait=0.25, clock=lambda: clock[0])
    assert [round(pace.wait(), 3) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert [round(pace.wait(), 3) for _ in range(2)] == [0.1, 0.2]
    # Past the longest wait: it waits that long, and takes no turn.
    assert pace.wait() == 0.25
    clock[0] += 0.2  # two turns later, one is free again
    assert round(pace.wait(), 3) == 0.1
    clock[0] += 10  # quiet: the whole burst is back
    assert [round(pace.wait(), 3) for _ in range(3)] == [0.0, 0.0, 0.0]


@pytest.mark.django_db(transaction=True)
# One at once, then a turn every 2 s: a connect slower than a turn would find it free.
@override_settings(WHITELIST_REFUSAL_RATE=0.5)
@pytest.mark.parametrize("async_mode", ["eventlet", "threading"])
def test_a_refusal_in_band_waits_its_turn_in_green_modes_only(
    async_mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    AllowedOrigin.objects.create(pattern=ALLOWED)
    allowlist.invalidate()
    server = GuardedServer(async_mode=async_mode)
    waits: list[float] = []
    wait = RefusalPace.wait

    def recorded(pace: RefusalPace) -> float:
        waits.append(wait(pace))
        return waits[-1]

    monkeypatch.setattr(RefusalPace, "wait", recorded)
    with serving(socketio.WSGIApp(server), async_mode, before_stop=server.shutdown) as url:
        for _ in range(3):
            outcome, _ = try_connect(url, origin=REFUSED)
            assert outcome.refusal_reason == "origin-not-allowed"
        assert try_connect(url, origin=ALLOWED)[0].welcome is not None
    if async_mode == "threading":
        assert server.refusal_pace is None and waits == []
    else:
        # One at once (the burst), then each waits its turn, never past the longest wait.
        assert waits[0] == 0 and all(0 < each <= REFUSAL_MAX_WAIT for each in waits[1:]), waits
        assert len(waits) == 3


@pytest.mark.django_db(transaction=True)
@override_settings(WHITELIST_REFUSE_AT_HANDSHAKE=True)
def test_a_refusal_at_the_handshake_waits_its_turn() -> None:
    AllowedOrigin.objects.create(pattern=ALLOWED)
    allowlist.invalidate()
    turns: list[str] = []
    client = Client(OriginGate(Recorder(), refusal_turn=lambda: turns.append("turn")))
    assert client.get(POLLING, headers={"Origin": REFUSED}).status_code == 403
    assert client.get(POLLING, headers={"Origin": ALLOWED}).status_code == 200
    assert turns == ["turn"]


@pytest.mark.django_db(transaction=True)
@override_settings(WHITELIST_REFUSAL_RATE=0.5, WHITELIST_CONNECT_TIMEOUT=0.5)
def test_a_refusal_waiting_past_the_connect_deadline_still_reaches_its_client() -> None:
    """The connect clock stops while a connect is handled, its wait for a turn included:
    the session must not be closed under the waiting refusal."""
    server = GuardedServer(async_mode="eventlet")
    with serving(socketio.WSGIApp(server), "eventlet", before_stop=server.shutdown) as url:
        for _ in range(2):  # the second waits its turn, about 2 s, four times the deadline
            outcome, _ = try_connect(url, origin=REFUSED)
            assert outcome.refusal_reason == "origin-not-allowed", outcome
