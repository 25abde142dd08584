"""Turn the raw benchmark numbers into the Markdown tables of bench/RESULTS.md."""

from __future__ import annotations

import statistics
from collections import defaultdict
from typing import Any

from bench import modes, ratios
from bench.rules import ORIGINS


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} [{min(values):.2f}–{max(values):.2f}]"


def _limit(server_cpu: float, client_cpu: float) -> str:
    """The busier of the two cores, once it is nearly full; else latency."""
    if max(server_cpu, client_cpu) < 0.8:
        return "neither core (latency)"
    return "server CPU" if server_cpu >= client_cpu else "client CPU"


def decisions(rows: list[dict[str, Any]]) -> list[str]:
    lines = [
        "### Decision cost (µs per `decide()`, median / p99, each call timed alone)",
        "",
        "| rules | answer | " + " | ".join(ORIGINS) + " |",
        "|---:|---|" + "---:|" * len(ORIGINS),
    ]
    by_rules: dict[tuple[bool, int], dict[str, dict[str, Any]]] = defaultdict(dict)
    for row in rows:
        by_rules[(not row.get("kept", True), row["rules"])][row["origin"]] = row
    for (anew, count), cells in sorted(by_rules.items()):
        values = [f"{cells[o]['median_us']:.2f} / {cells[o]['p99_us']:.2f}" for o in ORIGINS]
        answer = "decided anew" if anew else "kept"
        lines.append(f"| {count:,} | {answer} | " + " | ".join(values) + " |")
    return lines


def connects(runs: list[dict[str, Any]], settings: dict[str, Any]) -> list[str]:
    groups: dict[tuple[str, bool], list[dict[str, Any]]] = defaultdict(list)
    for run in runs:
        groups[(run["server"], run["allowed"])].append(run)
    lines = [
        f"### Connect rate (websocket, concurrency {settings['concurrency']}, "
        f"{settings['rounds']} alternating rounds of {settings['run_seconds']:.0f} s)",
        "",
        "| server | origin | connects/s, median [range] | p50 ms | p99 ms | server CPU | "
        "client CPU | limited by |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for (server, allowed), group in groups.items():
        server_cpu = statistics.median(r["server_cpu"] for r in group)
        client_cpu = statistics.median(r["client_cpu"] for r in group)
        errors = sum(r["error"] for r in group)
        lines.append(
            f"| {server} | {'allowed' if allowed else 'refused'} | "
            f"{_spread([r['rate'] for r in group])} | "
            f"{statistics.median(r['p50_ms'] for r in group):.1f} | "
            f"{statistics.median(r['p99_ms'] for r in group):.1f} | "
            f"{server_cpu:.0%} | {client_cpu:.0%} | {_limit(server_cpu, client_cpu)}"
            + (f" ({errors} errors)" if errors else "")
            + " |"
        )
    lines += ["", "Ratios per round (median [range]):", ""]
    rounds: dict[int, dict[tuple[str, bool], float]] = defaultdict(dict)
    for run in runs:
        rounds[run["round"]][(run["server"][0], run["allowed"])] = run["rate"]
    for label, top, bottom in (
        ("a/b, allowed", ("a", True), ("b", True)),
        ("a/c, allowed", ("a", True), ("c", True)),
        ("a/c, refused", ("a", False), ("c", False)),
    ):
        ratios = [r[top] / r[bottom] for r in rounds.values() if top in r and bottom in r]
        lines.append(f"- {label}: {_spread(ratios)}")
    return lines


def guard_ratios(numbers: dict[str, Any], settings: dict[str, Any]) -> list[str]:
    rounds = ratios.Rounds(rates=numbers["rates"], ratios=numbers["ratios"])
    return [
        f"### Guardsite against plain python-socketio ({settings['ratio_rounds']} alternating "
        f"rounds of {settings['ratio_seconds']:.0f} s a measure, the same handlers)",
        "",
        f"Connects at concurrency {ratios.CONCURRENCY} over each transport, with the "
        "handshake limit off and on but never reached (each connect from the next of 250 "
        "addresses, against plain python-socketio's from the same 250); echoes (an event "
        f"and its ack) on {ratios.ECHO_SOCKETS} sockets, Node socket.io's beside them.",
        "",
        *ratios.table(rounds),
    ]


def held(rows: list[dict[str, Any]], settings: dict[str, Any]) -> list[str]:
    lines = [
        f"### Held connections ({settings['hold_count']:,} websocket Socket.IO sockets "
        f"per server, held {settings['hold_seconds']:.0f} s, past one 25 s ping interval)",
        "",
        "| server | opened | still open | RSS before → held (MiB) | KiB per connection |",
        "|---|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['server']} | {row['opened']:,} | {row['still_open']:,} | "
            f"{row['rss_before_mib']:.0f} → {row['rss_held_mib']:.0f} | "
            f"{row['kib_per_connection']:.1f} |"
        )
    return lines


def render(results: dict[str, Any]) -> str:
    queries = results["queries"]
    propagation = results["propagation"]
    lines = [
        f"## Benchmark results ({results['started'][:16]} UTC, {results['rules']:,} rules, "
        f"{results['seconds']:.0f} s)",
        "",
        *decisions(results["decisions"]),
        "",
        *connects(results["connects"], results["settings"]),
        "",
        *guard_ratios(results["ratios"], results["settings"]),
        "",
        "### SQL queries per connect (steady state, through the real server)",
        "",
        f"{queries['per_connect']:.3f} per connect: {queries['queries']} statements during "
        f"{queries['connects']:,} answered connects, all {queries['watcher_polls']} of them "
        "the watcher's revision polls (one every 0.25 s, independent of connects)."
        if queries["queries"] == queries["watcher_polls"]
        else f"{queries['per_connect']:.3f} per connect ({queries['queries']} statements, "
        f"{queries['watcher_polls']} watcher polls, {queries['connects']:,} connects).",
        "",
        *held(results["held"], results["settings"]),
        "",
        f"### Propagation (CLI in another process → enforced, {propagation['trials']} trials)",
        "",
        "Polled every 0.25 s (no message queue):",
        "",
        *_propagation(propagation),
        "",
    ]
    pushed = results.get("propagation_pushed")
    if pushed:
        lines += [
            "Pushed over Redis to the second of two nodes on SQLite (their poll every 60 s):",
            "",
            *_propagation(pushed),
            "",
        ]
    if "scale_out" in results:
        lines += scale_out(results["scale_out"], results["settings"])
    if "hostile" in results:
        lines += hostile(results["hostile"])
    if "refusal_log" in results:
        lines += refusal_log(results["refusal_log"])
    if "modes" in results:
        lines += ["### Async modes under gunicorn and runsocket, guarded against guarded", ""]
        lines += [*modes.table(results["modes"]), ""]
    return "\n".join(lines)


def refusal_log(numbers: dict[str, Any]) -> list[str]:
    """Connects a second with the refusal log on and off, and what the log held."""
    on, off = numbers["summary"]["on"], numbers["summary"]["off"]
    lines = [
        "### The refusal log (bench/refusal_log.py)",
        "",
        f"Connects a second, 32 at once, median of {numbers['rounds']} runs of "
        f"{numbers['seconds']:.0f} s each, on and off in turn:",
        "",
        "| `WHITELIST_REFUSAL_LOG` | refused/s | admitted/s |",
        "|---|---:|---:|",
        f"| on | {on['refused_rate']:,.0f} | {on['admitted_rate']:,.0f} |",
        f"| off | {off['refused_rate']:,.0f} | {off['admitted_rate']:,.0f} |",
        f"| on ÷ off | {on['refused_rate'] / off['refused_rate']:.2f}× | "
        f"{on['admitted_rate'] / off['admitted_rate']:.2f}× |",
        "",
        "What the log held after each run with it on (refusals the load generator saw → rows):",
        "",
    ]
    for run in numbers["runs"]:
        if run["log"]:
            rows = ", ".join(f"{origin}: {count:,}" for origin, count in run["rows"])
            lines.append(f"* {run['refused']:,} refused → {len(run['rows'])} row ({rows})")
    return [*lines, ""]


def hostile(numbers: dict[str, Any]) -> list[str]:
    mixed, fuzz = numbers["mixed"], numbers["fuzz"]
    handshake = numbers["handshake"]
    lines = [
        "### Hostile traffic (bench/hostile.py)",
        "",
        f"Mixed load: {mixed['total']:,} connects, 200 at once from 200 addresses, every other "
        f"one from a refused origin: {mixed['connected']:,} welcomed, {mixed['refused']:,} "
        f"refused, {mixed['wrong']} wrong decisions, {mixed['error']} errors, "
        f"{len(mixed['server_errors'])} HTTP 5xx, in {mixed['seconds']:.1f} s.",
        "",
        "Allowed connects a second (16 at once, from 250 addresses), alone and during a flood "
        "of refused connects (64 at once, at full speed):",
        "",
        "| flood | alone | during | ratio | flood answered | server CPU during |",
        "|---|---:|---:|---:|---|---:|",
    ]
    for key, label in (
        ("flood_one_address", "one address, limit on (default)"),
        ("flood_many_addresses", "250 addresses, limit off"),
        ("flood_many_addresses_unpaced", "250 addresses, limit off, refusals unpaced"),
        ("flood_many_addresses_handshake", "250 addresses, limit off, refused at the handshake"),
        ("flood_many_addresses_handshake_unpaced", "the same, unpaced"),
    ):
        if key not in numbers:  # a run from before the handshake's flood
            continue
        run = numbers[key]
        flood = run["flood"]
        answered = (
            f"{flood['refused']:,} refused, {flood['limited']:,} HTTP 429, "
            f"{flood['error']:,} dropped unread"
        )
        lines.append(
            f"| {label} | {run['alone']['rate']:,.0f} | {run['during']['rate']:,.0f} | "
            f"{run['ratio']:.2f}× | {answered} | {run['server_cpu']:.0%} |"
        )
    node = numbers.get("node_refused", {}).get("rate")
    node_text = f"; Node socket.io's `io.use()` refusals: {node:,.0f}/s" if node else ""
    lines += [
        "",
        "Refusal at the handshake (`WHITELIST_REFUSE_AT_HANDSHAKE`, HTTP 403): "
        f"{handshake['refused']['rate']:,.0f} refused/s against "
        f"{handshake['admitted']['rate']:,.0f} admitted/s{node_text}.",
    ]
    against = numbers.get("handshake_against_node")
    if against:
        rounds = "; ".join(f"{row['guardsite']:,.0f} against {row['node']:,.0f}" for row in against)
        ratio = _spread([row["guardsite"] / row["node"] for row in against])
        lines += [
            "",
            "The same refusals against Node socket.io's `io.use()` refusals, alternating "
            f"rounds with fresh servers, a second: {rounds}; Guardsite / Node {ratio}.",
        ]
    lines += [
        "",
        f"Fuzzing: {fuzz['inputs']:,} inputs in {fuzz['seconds']:.0f} s, "
        f"{fuzz['wrong_decisions']} wrong decisions, {fuzz['server_errors']} HTTP 5xx, "
        f"{numbers['server_log_errors']} tracebacks in the servers' logs.",
        "",
        "| | sessions | green threads | sockets | RSS (MiB) |",
        "|---|---:|---:|---:|---:|",
    ]
    for key in ("before", "right_after", "settled"):
        lines.append(_resources_row(f"fuzzing, {key.replace('_', ' ')}", fuzz[key]))
    for key, label in (
        ("mixed", "mixed load"),
        ("flood_one_address", "flood, one address"),
        ("flood_many_addresses", "flood, 250 addresses"),
        ("flood_many_addresses_handshake", "flood, 250 addresses, at the handshake"),
        ("handshake", "refusal at the handshake"),
    ):
        resources = numbers.get(key, {}).get("resources")
        if resources:
            lines.append(_resources_row(f"{label}, before", resources["before"]))
            lines.append(_resources_row(f"{label}, right after", resources["after"]))
    return [*lines, ""]


def _resources_row(label: str, row: dict[str, int]) -> str:
    return (
        f"| {label} | {row['sessions']} | {row['green_threads']} | "
        f"{row['sockets']} | {row['rss_kib'] / 1024:.0f} |"
    )


def scale_out(numbers: dict[str, Any], settings: dict[str, Any]) -> list[str]:
    """Two nodes on PostgreSQL and Redis, behind nginx."""
    lines = [
        "### Scale-out: two nodes on PostgreSQL and Redis, behind nginx",
        "",
        f"Allowed connects (websocket, concurrency {settings['concurrency']}, "
        f"{settings['rounds']} rounds; nodes on either core, load generator on core 1):",
        "",
        "| setup | connects/s, median [range] | p50 ms | p99 ms | nodes' CPU | errors |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for run in numbers["connects"]:
        groups[run["setup"]].append(run)
    for setup, group in groups.items():
        lines.append(
            f"| {setup} | {_spread([r['rate'] for r in group])} | "
            f"{statistics.median(r['p50_ms'] for r in group):.1f} | "
            f"{statistics.median(r['p99_ms'] for r in group):.1f} | "
            f"{statistics.median(r['nodes_cpu'] for r in group):.0%} | "
            f"{sum(r['error'] for r in group)} |"
        )
    revocation = numbers["revocation"]
    lines += [
        "",
        "Rule changes made by the CLI, pushed by PostgreSQL LISTEN/NOTIFY to the second "
        "node (its poll every 5 s, the default with a push):",
        "",
        *_propagation(numbers["propagation"]),
        f"- {revocation['count']} open sockets of a removed origin on the second node: "
        f"first closed after {revocation['first_ms']:.0f} ms, last after "
        f"{revocation['last_ms']:.0f} ms",
        "",
        "Broadcast latency (one client emits, the server broadcasts, another client receives; "
        f"{numbers['emit_same_node']['count']} emits, one at a time):",
        "",
    ]
    for label, key in (
        ("same node", "emit_same_node"),
        ("across nodes, through Redis", "emit_cross_node"),
    ):
        emit = numbers[key]
        lines.append(f"- {label}: median {emit['median_ms']:.1f} ms, p99 {emit['p99_ms']:.1f} ms")
    lines += [
        "",
        "Database statements of both nodes (PostgreSQL's log_statement = all):",
        "",
        "| while | statements/s | revision polls/s |",
        "|---|---:|---:|",
    ]
    for label, row in numbers["queries"].items():
        extra = (
            f" ({row['connects_per_second']:.0f} connects/s)"
            if "connects_per_second" in row
            else ""
        )
        lines.append(
            f"| {label}{extra} | {row['statements_per_second']:.2f} | "
            f"{row['revision_polls_per_second']:.2f} |"
        )
    return [*lines, ""]


def _propagation(numbers: dict[str, Any]) -> list[str]:
    return [
        f"- rule {label}: median {numbers[key + '_median_ms']:.0f} ms, "
        f"p99 {numbers[key + '_p99_ms']:.0f} ms, max {numbers[key + '_max_ms']:.0f} ms"
        for label, key in (("added", "add"), ("removed", "remove"))
    ]
