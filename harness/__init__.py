"""Real services on loopback ports, for the tests, the benchmarks and ``make cluster``.

runsocket and gunicorn (``live``), PostgreSQL, Redis and nginx (``services``), and
the hostile-input fuzzer (``fuzz``): each starts unprivileged on a free loopback
port and stops with its context. Not part of the wheel.
"""
