"""The snapshot: no query per decision, dropped on local change, refreshed on remote change."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.db import connection
from django.test import override_settings

from whitelist.core.index import AllowlistIndex
from whitelist.core.origins import parse_origin_header
from whitelist.models import AllowedOrigin, AllowlistRevision
from whitelist.rules.cache import AllowlistCache, Snapshot, allowlist
from whitelist.rules.decision import decide

pytestmark = pytest.mark.django_db(transaction=True)

ORIGIN = "https://shop.example.com"


def allowed(cache: AllowlistCache, origin: str = ORIGIN) -> bool:
    return decide({"HTTP_ORIGIN": origin}, cache).allowed


def rounds(count: int) -> tuple[Callable[[float], None], Callable[[], bool]]:
    """A sleep and a stop that let the watcher poll ``count`` times."""
    slept = [0]

    def sleep(_seconds: float) -> None:
        slept[0] += 1

    return sleep, lambda: slept[0] > count


def test_steady_state_decisions_make_no_queries(django_assert_num_queries) -> None:  # noqa: ANN001
    AllowedOrigin.objects.create(pattern=ORIGIN)
    cache = AllowlistCache()
    cache.snapshot()
    with django_assert_num_queries(0):
        for _ in range(100):
            assert allowed(cache)


def test_saving_a_rule_updates_this_process_at_commit() -> None:
    allowlist.invalidate()
    assert not allowed(allowlist)
    AllowedOrigin.objects.create(pattern=ORIGIN)
    assert allowed(allowlist)


def test_deleting_a_rule_updates_this_process() -> None:
    rule = AllowedOrigin.objects.create(pattern=ORIGIN)
    assert allowed(allowlist)
    rule.delete()
    assert not allowed(allowlist)


def test_bulk_disable_updates_this_process_and_the_revision() -> None:
    AllowedOrigin.objects.create(pattern=ORIGIN)
    assert allowed(allowlist)
    before = AllowlistRevision.current()
    AllowedOrigin.objects.all().update(enabled=False)
    assert AllowlistRevision.current() == before + 1
    assert not allowed(allowlist)


def test_refresh_follows_a_change_made_elsewhere() -> None:
    cache = AllowlistCache()
    assert not allowed(cache)
    # Another process: raw SQL, no signal reaches this cache.
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO whitelist_allowedorigin (pattern, enabled, note, created_at, updated_at)"
            " VALUES (%s, 1, '', '2026-01-01', '2026-01-01')",
            [ORIGIN],
        )
    assert not allowed(cache)  # still the cached snapshot
    AllowlistRevision.bump()
    assert cache.refresh() is True
    assert allowed(cache)
    assert cache.refresh() is False


def test_disabled_rules_are_not_loaded() -> None:
    AllowedOrigin.objects.create(pattern=ORIGIN, enabled=False)
    assert len(AllowlistCache().snapshot().index) == 0


def test_watch_keeps_the_last_rules_when_the_database_fails() -> None:
    AllowedOrigin.objects.create(pattern=ORIGIN)
    calls = {"revision": 0}

    def failing_revision() -> int:
        calls["revision"] += 1
        raise ConnectionError("database is down")

    cache = AllowlistCache(revision=failing_revision)
    cache.snapshot()
    sleep, stop = rounds(3)
    cache.watch(sleep=sleep, stop=stop)
    assert calls["revision"] == 3
    assert cache.snapshot().index.match(parse_origin_header(ORIGIN)) is not None


def test_watch_rechecks_a_snapshot_another_caller_reloaded() -> None:
    """A change in this process: a connect reloads the snapshot before the watcher looks."""
    revision = {"n": 1}
    index = AllowlistCache().snapshot().index
    cache = AllowlistCache(
        load=lambda: Snapshot(revision["n"], index), revision=lambda: revision["n"]
    )
    cache.snapshot()
    seen: list[int] = []
    ticks = iter(range(3))

    def tick(_seconds: float) -> None:
        if next(ticks) == 1:  # between two polls: a local change, then a connect
            revision["n"] = 2
            cache.invalidate()
            cache.snapshot()

    cache.watch(tick, stop=lambda: len(seen) >= 1, on_change=lambda s: seen.append(s.revision))
    assert seen == [2]


def test_watch_offers_a_snapshot_again_when_the_recheck_failed() -> None:
    cache = AllowlistCache(load=lambda: Snapshot(7, AllowlistIndex([])), revision=lambda: 7)
    calls: list[int] = []

    def flaky(snapshot: Snapshot) -> None:
        calls.append(snapshot.revision)
        if len(calls) == 1:
            raise RuntimeError("socket trouble")

    sleep, stop = rounds(3)
    cache.watch(sleep, stop=stop, on_change=flaky)
    assert calls == [7, 7]


def test_a_rule_whose_extra_scheme_is_no_longer_listed_is_not_loaded() -> None:
    with override_settings(WHITELIST_EXTRA_SCHEMES=["myapp"]):
        AllowedOrigin.objects.create(pattern="myapp://main")
        assert allowed(AllowlistCache(), "myapp://main")
    assert not allowed(AllowlistCache(), "myapp://main")
