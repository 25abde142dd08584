"""Refusals and admissions counted in memory between flushes: aggregated and bounded."""

from __future__ import annotations

from whitelist.reporting.tallies import (
    OTHER_NAMESPACES,
    OTHER_ORIGINS,
    AdmissionCounters,
    RefusalKey,
    RefusalTallies,
    Tally,
    busiest,
)


def test_a_million_attempts_from_one_origin_are_one_entry() -> None:
    now = [100.0]
    tallies = RefusalTallies(clock=lambda: now[0])
    for number in range(1000):
        now[0] += 1
        tallies.add(
            "https://evil.test", "origin-not-allowed", "/", False, f"10.0.0.{number % 7}", "ua"
        )
    taken = tallies.take()
    (key,) = taken
    assert key == RefusalKey("https://evil.test", "origin-not-allowed", "/", False)
    tally = taken[key]
    assert (tally.count, tally.first_seen, tally.last_seen) == (1000, 101.0, 1100.0)
    assert tally.address == "10.0.0.5"  # the last one: 999 % 7
    assert tallies.take() == {}


def test_invented_origins_past_the_bound_are_counted_together() -> None:
    tallies = RefusalTallies(max_keys=10)
    for number in range(500):
        tallies.add(
            f"https://junk{number}.test", "origin-not-allowed", f"/n{number}", False, "a", "u"
        )
    taken = tallies.take()
    assert len(taken) == 11  # ten kept as they are, one for all the others
    other = taken[RefusalKey(OTHER_ORIGINS, "origin-not-allowed", OTHER_NAMESPACES, False)]
    assert other.count == 490
    assert sum(tally.count for tally in taken.values()) == 500


def test_report_only_entries_are_apart_from_refusals() -> None:
    tallies = RefusalTallies()
    tallies.add("https://new.test", "origin-not-allowed", "/", True, "a", "u")
    tallies.add("https://new.test", "origin-not-allowed", "/", False, "a", "u")
    assert len(tallies.take()) == 2


def test_long_values_are_cut() -> None:
    tallies = RefusalTallies()
    tallies.add("https://" + "a" * 400, "r", "/" + "n" * 200, False, "1" * 100, "u" * 1000)
    ((key, tally),) = tallies.take().items()
    assert (len(key.origin), len(key.namespace)) == (300, 100)
    assert (len(tally.address), len(tally.user_agent)) == (64, 300)


def test_counts_put_back_after_a_failed_flush_are_merged_not_lost() -> None:
    now = [10.0]
    tallies = RefusalTallies(clock=lambda: now[0])
    tallies.add("https://evil.test", "r", "/", False, "first", "u")
    taken = tallies.take()
    now[0] = 20.0
    tallies.add("https://evil.test", "r", "/", False, "second", "u")
    tallies.put_back(taken)
    (tally,) = tallies.take().values()
    assert (tally.count, tally.first_seen, tally.last_seen, tally.address) == (
        2,
        10.0,
        20.0,
        "second",
    )


def test_put_back_stays_bounded() -> None:
    tallies = RefusalTallies(max_keys=5)
    failed = RefusalTallies(max_keys=100)
    for number in range(50):
        failed.add(f"https://o{number}.test", "r", "/", False, "a", "u")
    for number in range(5):
        tallies.add(f"https://new{number}.test", "r", "/", False, "a", "u")
    tallies.put_back(failed.take())
    taken = tallies.take()
    assert len(taken) == 6
    assert sum(tally.count for tally in taken.values()) == 55


def test_admissions_are_counted_per_rule_for_the_last_hour() -> None:
    now = [0.0]
    counters = AdmissionCounters(minutes=60, clock=lambda: now[0])
    counters.admitted("https://a.test")
    now[0] = 30 * 60
    counters.admitted("https://a.test")
    counters.admitted("https://b.test")
    assert counters.recent() == {"https://a.test": 2, "https://b.test": 1}
    now[0] = 61 * 60  # the first minute is over an hour ago
    assert counters.recent() == {"https://a.test": 1, "https://b.test": 1}


def test_a_flush_keeps_the_busiest_origins_and_merges_the_rest_by_reason() -> None:
    tallies = {
        RefusalKey(f"https://o{n}.test", reason, "/", False): Tally(n, n, n + 1, f"a{n}", "u")
        for n in range(1, 7)
        for reason in ("origin-not-allowed", "null-origin")
    }
    kept = busiest(tallies, 4)
    assert sorted((key.origin, key.reason) for key in kept) == [
        (OTHER_ORIGINS, "null-origin"),
        (OTHER_ORIGINS, "origin-not-allowed"),
        ("https://o5.test", "null-origin"),
        ("https://o5.test", "origin-not-allowed"),
        ("https://o6.test", "null-origin"),
        ("https://o6.test", "origin-not-allowed"),
    ]
    other = kept[RefusalKey(OTHER_ORIGINS, "null-origin", OTHER_NAMESPACES, False)]
    assert (other.count, other.first_seen, other.last_seen, other.address) == (10, 1, 5, "a4")
    assert sum(tally.count for tally in kept.values()) == 2 * sum(range(1, 7))


def test_a_flush_within_the_bound_is_left_as_it_is() -> None:
    tallies = {RefusalKey("https://o.test", "r", "/", False): Tally(1, 1, 1, "a", "u")}
    assert busiest(tallies, 1) is tallies
