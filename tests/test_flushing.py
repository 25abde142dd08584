"""Writing the in-memory counts to the database (whitelist.reporting.flushing and
refusal_rows), outages included."""

from __future__ import annotations

import sqlite3
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.db.models import Sum
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from harness.live import wait_until
from whitelist.records import RefusedConnect, RuleActivity
from whitelist.reporting import refusal_rows
from whitelist.reporting.flushing import ACTIVITY_SECONDS, ROWS_PER_FLUSH, Recorder
from whitelist.reporting.refusal_rows import prune_refusals, write_refusals
from whitelist.reporting.tallies import OTHER_ORIGINS, RefusalKey, Tally

pytestmark = pytest.mark.django_db(transaction=True)
KEY = RefusalKey("https://evil.test", "origin-not-allowed", "/", False)


def tally(count: int, at: float, address: str = "10.0.0.1") -> Tally:
    return Tally(count, at, at, address, "agent")


def test_flushes_add_up_in_one_row() -> None:
    write_refusals({KEY: tally(3, 1000.0)})
    write_refusals({KEY: tally(4, 2000.0, "10.0.0.2")})
    (row,) = RefusedConnect.objects.all()
    assert (row.count, row.last_address) == (7, "10.0.0.2")
    assert row.first_seen == datetime.fromtimestamp(1000.0, tz=UTC)
    assert row.last_seen == datetime.fromtimestamp(2000.0, tz=UTC)


def test_counts_survive_a_database_outage() -> None:
    """A real failure: the table is gone while the flush runs, then back."""
    now = [1000.0]
    recorder = Recorder(clock=lambda: now[0])
    for _ in range(5):
        recorder.refusals.add(*KEY, "10.0.0.1", "agent")
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE whitelist_refusedconnect RENAME TO away")
    try:
        assert recorder.flush(Counter()) is False
        recorder.refusals.add(*KEY, "10.0.0.1", "agent")
    finally:
        with connection.cursor() as cursor:
            cursor.execute("ALTER TABLE away RENAME TO whitelist_refusedconnect")
    assert recorder.flush(Counter()) is True
    assert RefusedConnect.objects.get().count == 6


def test_a_flush_with_nothing_to_write_says_nothing_of_an_outage(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Only a write that worked ends an outage: in one, the failure is logged once.

    A flush with no refusals and no activity due touches no database. It used to
    count as a recovery: "written again" while the database was still away, and
    the next failure at ERROR a second time.
    """
    now = [1000.0]
    recorder = Recorder(clock=lambda: now[0])
    recorder.admissions.admitted("https://shop.test")
    caplog.set_level("DEBUG", logger="whitelist.reporting.flushing")
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE whitelist_ruleactivity RENAME TO away")
        cursor.execute("ALTER TABLE whitelist_refusedconnect RENAME TO away_too")
    try:
        assert recorder.flush(Counter()) is False  # the activity fails
        now[0] += 1  # no refusals, no activity due: nothing to write
        assert recorder.flush(Counter()) is True
        recorder.refusals.add(*KEY, "10.0.0.1", "agent")
        assert recorder.flush(Counter()) is False
    finally:
        with connection.cursor() as cursor:
            cursor.execute("ALTER TABLE away RENAME TO whitelist_ruleactivity")
            cursor.execute("ALTER TABLE away_too RENAME TO whitelist_refusedconnect")
    assert recorder.flush(Counter()) is True
    said = [(record.levelname, record.getMessage()) for record in caplog.records]
    assert said == [
        ("ERROR", "Could not write the refusal log; counts kept in memory"),
        ("DEBUG", "Could not write the refusal log; counts kept in memory"),
        ("WARNING", "The refusal log is written again"),
    ]


def test_the_log_stays_within_its_age_and_row_limits() -> None:
    now = datetime(2026, 11, 1, tzinfo=UTC)
    for day in range(10):
        seen = now - timedelta(days=day)
        RefusedConnect.objects.create(
            origin=f"https://o{day}.test", reason="r", count=1, first_seen=seen, last_seen=seen
        )
    with override_settings(WHITELIST_REFUSAL_LOG_MAX_AGE=7, WHITELIST_REFUSAL_LOG_MAX_ROWS=5):
        assert prune_refusals(now.timestamp()) == 5
    kept = RefusedConnect.objects.order_by("-last_seen").values_list("origin", flat=True)
    assert list(kept) == [f"https://o{day}.test" for day in range(5)]


def test_rule_activity_is_written_when_it_changes() -> None:
    now = [1000.0]
    recorder = Recorder(clock=lambda: now[0])
    recorder.admissions.admitted("https://shop.test")
    recorder.admissions.admitted("https://shop.test")
    assert recorder.flush(Counter({"https://shop.test": 1}))
    row = RuleActivity.objects.get()
    assert (row.pattern, row.open_now, row.admitted_recently) == ("https://shop.test", 1, 2)
    recorder.admissions.admitted("https://shop.test")
    now[0] += 1  # within ACTIVITY_SECONDS: not written yet
    assert recorder.flush(Counter())
    row.refresh_from_db()
    assert (row.open_now, row.admitted_recently) == (1, 2)
    now[0] += ACTIVITY_SECONDS
    assert recorder.flush(Counter())
    row.refresh_from_db()
    assert (row.open_now, row.admitted_recently) == (0, 3)


@override_settings(WHITELIST_REFUSAL_LOG=False)
def test_with_the_log_off_nothing_is_written() -> None:
    recorder = Recorder()
    recorder.refusals.add(*KEY, "10.0.0.1", "agent")
    assert recorder.flush(Counter())
    assert not RefusedConnect.objects.exists()


def test_control_characters_never_block_the_log() -> None:
    """PostgreSQL refuses NUL in text; runsocket passes it through in headers."""
    recorder = Recorder()
    recorder.refusals.add("https://evil.test", "origin-not-allowed", "/\x00", False, "1", "a\x00b")
    recorder.refusals.add(*KEY, "10.0.0.1", "agent")
    assert recorder.flush(Counter())
    stored = RefusedConnect.objects.order_by("namespace").values_list(
        "namespace", "last_user_agent"
    )
    assert list(stored) == [("/", "agent"), ("/\ufffd", "a\ufffdb")]


def test_pruning_many_rows_beyond_the_limit_is_one_statement() -> None:
    """More rows than SQLite allows variables in one statement (32,766)."""
    seen = datetime(2026, 11, 1, tzinfo=UTC)
    RefusedConnect.objects.bulk_create(
        RefusedConnect(
            origin=f"https://o{number}.test",
            reason="r",
            count=1,
            first_seen=seen,
            last_seen=seen + timedelta(seconds=number),
        )
        for number in range(40_000)
    )
    with override_settings(WHITELIST_REFUSAL_LOG_MAX_ROWS=10):
        assert prune_refusals((seen + timedelta(days=1)).timestamp()) == 39_990
    kept = RefusedConnect.objects.values_list("origin", flat=True)
    assert sorted(kept) == sorted(f"https://o{number}.test" for number in range(39_990, 40_000))


# Statements of one flush of the refusal log, whatever the flood: begin, commit, the row
# limit's select and delete, and per batch of rows a savepoint, its release and one upsert
# (on databases without one: a select, an insert, a select and an update).
FLUSH_STATEMENT_BOUND = 4 + 3 * 3
GENERIC_FLUSH_STATEMENT_BOUND = 4 + 6 * 3


def flood(recorder: Recorder, origins: int, first: int = 0) -> None:
    for number in range(first, first + origins):
        recorder.refusals.add(
            f"https://x{number}.flood.test", "origin-not-allowed", "/", False, "10.0.0.1", "ua"
        )


def logged() -> tuple[int, int]:
    """(rows, attempts) in the refusal log."""
    return RefusedConnect.objects.count(), RefusedConnect.objects.aggregate(n=Sum("count"))["n"]


@pytest.mark.parametrize("upsert", [True, False], ids=["upsert", "generic"])
@pytest.mark.parametrize("origins", [150, 1000])
def test_a_flood_of_invented_origins_costs_a_fixed_number_of_statements(
    origins: int, upsert: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not upsert:  # as on a database without INSERT ... ON CONFLICT DO UPDATE
        monkeypatch.setattr(refusal_rows, "UPSERT_VENDORS", ())
    recorder = Recorder(clock=lambda: 1000.0)
    flood(recorder, origins)
    with CaptureQueriesContext(connection) as queries:
        assert recorder.flush(Counter())
    bound = FLUSH_STATEMENT_BOUND if upsert else GENERIC_FLUSH_STATEMENT_BOUND
    assert len(queries) <= bound, f"{len(queries)} statements"
    assert logged() == (ROWS_PER_FLUSH + 1, origins)  # the rest in one overflow row
    other = RefusedConnect.objects.get(origin=OTHER_ORIGINS)
    assert other.count == origins - ROWS_PER_FLUSH


def test_an_origin_refused_again_and_again_keeps_its_row_through_a_flood() -> None:
    recorder = Recorder(clock=lambda: 1000.0)
    for _ in range(5):
        recorder.refusals.add(*KEY, "10.0.0.1", "agent")
    flood(recorder, 999)
    assert recorder.flush(Counter())
    assert RefusedConnect.objects.get(origin=KEY.origin).count == 5


def test_the_row_limit_holds_at_every_flush() -> None:
    now = [1000.0]
    recorder = Recorder(clock=lambda: now[0])
    with override_settings(WHITELIST_REFUSAL_LOG_MAX_ROWS=50):
        for round_ in range(3):
            now[0] += 1  # far within the minute between prunes
            flood(recorder, 80, first=100 * round_)
            assert recorder.flush(Counter())
            assert RefusedConnect.objects.count() <= 50, f"after flush {round_ + 1}"
    newest = RefusedConnect.objects.order_by("-last_seen").first()
    assert newest is not None and newest.last_seen.timestamp() == now[0]


@pytest.mark.parametrize("upsert", [True, False], ids=["upsert", "generic"])
def test_a_row_another_server_inserted_first_gets_the_count_added(
    upsert: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not upsert:
        monkeypatch.setattr(refusal_rows, "UPSERT_VENDORS", ())
    seen = datetime.fromtimestamp(500.0, tz=UTC)
    RefusedConnect.objects.create(**KEY._asdict(), count=2, first_seen=seen, last_seen=seen)
    write_refusals({KEY: tally(3, 1000.0)})
    row = RefusedConnect.objects.get()
    assert (row.count, row.first_seen, row.last_address) == (5, seen, "10.0.0.1")


def test_a_flush_waits_for_the_flush_in_flight() -> None:
    """The last flush, as a server stops, must not return while another still writes.

    The process ends after it: the counts of a flush in flight (waiting here for
    a write lock another process holds) would be lost.
    """
    recorder = Recorder()
    for _ in range(3):
        recorder.refusals.add(*KEY, "10.0.0.1", "agent")
    holder = sqlite3.connect(
        connection.settings_dict["NAME"], isolation_level=None, check_same_thread=False
    )
    holder.execute("BEGIN IMMEDIATE")
    in_flight = threading.Thread(target=recorder.flush, args=(Counter(),))
    in_flight.start()
    release = threading.Timer(0.5, holder.execute, args=("COMMIT",))
    release.start()
    try:
        assert wait_until(lambda: len(recorder.refusals) == 0)  # taken by the flush in flight
        assert recorder.flush(Counter())
        assert RefusedConnect.objects.get().count == 3
    finally:
        release.join()
        in_flight.join()
        holder.close()
