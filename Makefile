# Guardsite: `make run` starts the seed demo, `make test` runs every test.
# Both set up what they need: the virtualenv, Python and npm packages.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
# The lowest python-socketio and python-engineio of the tested ranges (constraints-lowest.txt).
LOWEST := .venv-lowest
# The newest upstream releases, for make test-newest (not part of make test).
NEWEST := .venv-newest
# The newest gunicorn, beside the pinned one, for the gthread tests (tests/test_gunicorn.py).
GUNICORN_CURRENT := $(VENV)/gunicorn-current
GUARD_TESTS := tests/test_socketio.py tests/test_wsgi.py tests/test_handlers.py tests/test_checks.py \
	tests/test_messaging.py tests/test_engineio_log.py tests/sessions/ tests/test_websocket.py \
	tests/test_polling.py tests/test_report_only.py tests/test_socket_users.py tests/test_operations.py \
	tests/test_instrument.py tests/test_attachment_budget.py \
	tests/test_blocking.py tests/test_engine_*.py
# pytest-xdist workers: the tests mostly wait on sockets and servers, so more than the cores.
# Whole files per worker: a module's servers start once (tests/conftest.py orders the files).
WORKERS ?= 6
XDIST = -n $(WORKERS) --dist loadfile --no-loadscope-reorder
# The lowest-release run goes beside the whole suite (make test), on fewer workers.
LOWEST_XDIST = -n 2 --dist loadfile --no-loadscope-reorder
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
DEMO_ADDRS := 127.0.0.1:5000 127.0.0.1:5001 https://127.0.0.1:5443
DEMO_RULES := http://localhost:5000 https://localhost:5443

.PHONY: run check test docs bench-modes test-newest bench bench-quick bench-profile bench-instructions valgrind cluster lint format admin setup chromium redis nginx postgresql clean

run: $(VENV)/.runtime node_modules/.installed
	$(PY) manage.py migrate --no-input
	$(PY) manage.py collectstatic --no-input -v0
	$(PY) manage.py whitelist add $(DEMO_RULES) --note "seed demo" --keep-existing
	@echo
	@echo "Demo: open http://localhost:5000/ (allowed) and http://localhost:5001/ (not yet)."
	@echo "      https://localhost:5443/ is the same over TLS (wss://), with a development"
	@echo "      certificate in var/tls/: trust it or accept the browser's warning once."
	@echo "Admin: create your login with 'make admin' (or '$(PY) manage.py createsuperuser'),"
	@echo "       then open http://localhost:5000/admin/ and add http://localhost:5001,"
	@echo "       or run '$(PY) manage.py whitelist add http://localhost:5001'."
	@echo
	$(PY) manage.py runsocket $(DEMO_ADDRS)

# The quick tier: lint and every test that starts no process (about a minute). make test
# runs these too, with the live tests against real servers, services and a browser.
check: $(VENV)/.dev node_modules/.installed
	$(PY) manage.py collectstatic --no-input -v0
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(MAKE) --no-print-directory docs
	$(PY) -m pytest -q -p no:cacheprovider -m "not live" -n $(WORKERS)

# The reference in docs/ as HTML (docs/_build/html/); a warning, such as a link to a
# page or heading that does not exist, fails the build.
docs: $(VENV)/.dev
	$(PY) -m sphinx -W --keep-going -q -b html docs docs/_build/html

test: $(VENV)/.dev $(LOWEST)/.dev $(GUNICORN_CURRENT)/.installed node_modules/.installed \
		chromium redis nginx postgresql
	$(PY) manage.py collectstatic --no-input -v0
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(MAKE) --no-print-directory docs
	node --test --test-concurrency=1 tests/js/
	@echo "The whole suite on the newest releases:"
	@$(PY) -m pip list 2>/dev/null | grep -iE '^python-(socketio|engineio) '
	@echo "Beside it, the guard's tests on the lowest tested releases (their output follows):"
	@$(LOWEST)/bin/python -m pip list 2>/dev/null | grep -iE '^(python-socketio|python-engineio|eventlet) '
	rm -f .coverage .coverage.*
	@# Side by side: the whole suite leaves a core idle while its tests wait on servers.
	@# Lowest releases in eventlet mode only: the design's default, and most of the reaches;
	@# in-process only: real servers in the test process, none started beside the suite's.
	GUARDSITE_TEST_MODES=eventlet \
	$(LOWEST)/bin/python -m pytest -q -p no:cacheprovider $(LOWEST_XDIST) -m "not live" $(GUARD_TESTS) \
		> $(LOWEST)/last-run.log 2>&1 & lowest=$$!; \
	$(VENV)/bin/coverage run -m pytest $(XDIST) -m "not alone"; suite=$$?; \
	wait $$lowest; low=$$?; \
	echo "The guard's tests on the lowest tested releases:"; cat $(LOWEST)/last-run.log; \
	[ $$suite = 0 ] && [ $$low = 0 ]
	$(VENV)/bin/coverage run -m pytest -m alone
	$(VENV)/bin/coverage combine -q
	$(VENV)/bin/coverage report --skip-covered --fail-under=85

# The guard's tests on the newest python-socketio, python-engineio, eventlet, gunicorn and
# Django 5.2.x, in a fresh .venv-newest: how a new upstream release is judged. Not part of
# make test, whose releases stay put.
test-newest: node_modules/.installed
	rm -rf $(NEWEST)
	$(PYTHON) -m venv $(NEWEST)
	$(NEWEST)/bin/python -m pip install --quiet --upgrade pip
	$(NEWEST)/bin/python -m pip install --quiet -r requirements-dev.txt
	$(NEWEST)/bin/python -m pip install --quiet --upgrade python-socketio python-engineio \
		eventlet gunicorn "Django>=5.2,<5.3"
	@$(NEWEST)/bin/python -m pip list 2>/dev/null \
		| grep -iE '^(python-socketio|python-engineio|eventlet|gunicorn|django) '
	$(NEWEST)/bin/python manage.py collectstatic --no-input -v0
	$(NEWEST)/bin/python -W ignore manage.py check
	$(NEWEST)/bin/python -m pytest -q -p no:cacheprovider $(GUARD_TESTS)

# Benchmarks (about 26 minutes): results in bench/results/; bench/RESULTS.md keeps the latest.
bench: $(VENV)/.dev $(GUNICORN_CURRENT)/.installed node_modules/.installed redis nginx postgresql
	$(PY) manage.py collectstatic --no-input -v0
	$(PY) bench/run.py

# eventlet, gevent and threading under gunicorn, guarded against guarded (about 5 minutes).
bench-modes: $(VENV)/.dev $(GUNICORN_CURRENT)/.installed node_modules/.installed
	$(PY) manage.py collectstatic --no-input -v0
	$(PY) bench/modes.py

# Before and after a change on the connect or message path (under 2 minutes): Guardsite
# against plain python-socketio, connects on both transports and echoed messages.
bench-quick: $(VENV)/.dev node_modules/.installed
	$(PY) bench/quick.py

# Where an admitted connect's server time goes, Guardsite against plain python-socketio
# (py-spy samples; about a minute): tables on stdout, collapsed stacks in bench/results/.
bench-profile: $(VENV)/.dev node_modules/.installed
	$(PY) bench/profile.py

# Instructions a connect under valgrind's callgrind, Guardsite and plain python-socketio
# counted in turn three times (about 4 minutes): the ratio moves by a few per cent where
# connect rates move by 15 %; the measure for each change on the connect path.
bench-instructions: $(VENV)/.dev node_modules/.installed valgrind
	$(PY) bench/instructions.py --rounds 3

valgrind:
	@test -x /usr/bin/valgrind || { $(SUDO) apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind; }

# Two nodes, Redis, PostgreSQL and nginx on loopback ports, until Ctrl-C (deploy/cluster.py).
cluster: $(VENV)/.runtime node_modules/.installed redis nginx postgresql
	$(PY) manage.py collectstatic --no-input -v0
	$(PY) deploy/cluster.py

lint: $(VENV)/.dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(VENV)/.dev
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

admin: $(VENV)/.runtime
	$(PY) manage.py migrate --no-input -v0
	$(PY) manage.py createsuperuser

setup: $(VENV)/.dev node_modules/.installed

# The browser tests drive Debian's Chromium; Playwright never downloads one.
chromium:
	@test -x /usr/bin/chromium || { $(SUDO) apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

# The message-queue tests start their own redis-server on a loopback port.
redis:
	@test -x /usr/bin/redis-server || { $(SUDO) apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server; }

# tests/test_nginx.py serves deploy/nginx.conf with its own nginx on a loopback port.
nginx:
	@test -x /usr/sbin/nginx || { $(SUDO) apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light; }

# tests/test_postgres.py starts its own unprivileged cluster (initdb) on a loopback port.
postgresql:
	@ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql; }

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.runtime: requirements.txt | $(VENV)/bin/python
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt | $(VENV)/bin/python
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@ $(VENV)/.runtime

$(LOWEST)/.dev: requirements.txt requirements-dev.txt constraints-lowest.txt
	$(PYTHON) -m venv $(LOWEST)
	$(LOWEST)/bin/python -m pip install --quiet --upgrade pip
	$(LOWEST)/bin/python -m pip install --quiet -r requirements-dev.txt -c constraints-lowest.txt
	touch $@

$(GUNICORN_CURRENT)/.installed: requirements-gunicorn-current.txt | $(VENV)/bin/python
	rm -rf $(GUNICORN_CURRENT)
	$(PY) -m pip install --quiet --no-deps --target $(GUNICORN_CURRENT) \
		-r requirements-gunicorn-current.txt
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

clean:
	rm -rf $(VENV) $(LOWEST) node_modules staticfiles .coverage htmlcov docs/_build
