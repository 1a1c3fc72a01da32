# Keyplane developer commands. Every target that needs services brings up
# PostgreSQL and Redis first (bin/services); see README.md.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PORT ?= 8000
WITH_SERVICES = bin/services up && set -a && . .keyplane/services.env && set +a &&

.PHONY: install lint typecheck test browser run worker beat demo stop clean

# Reinstall only when a dependency list changed, so a second run needs no network.
$(STAMP): pyproject.toml client/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]' -e './client[openfeature]'
	touch $@

install: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy portal licensing overlays audit

# pytest exits 5 when it collected no test; that must fail, not pass quietly.
test: $(STAMP) browser
	@$(WITH_SERVICES) $(BIN)/python manage.py check --fail-level WARNING && \
	$(BIN)/pytest $(PYTEST_ARGS); status=$$?; \
	if [ $$status -eq 5 ]; then echo "make test: no tests were collected" >&2; exit 1; fi; \
	exit $$status

run: $(STAMP)
	@$(WITH_SERVICES) $(BIN)/python manage.py migrate_schemas --shared --noinput -v 0 && \
	$(BIN)/python manage.py migrate_schemas --noinput -v 0 && \
	$(BIN)/python manage.py bootstrap_platform && \
	exec $(BIN)/gunicorn portal.wsgi:application --bind 127.0.0.1:$(PORT) --workers 2 \
		--access-logfile - --error-logfile -

worker: $(STAMP)
	@$(WITH_SERVICES) exec $(BIN)/celery -A portal worker --loglevel INFO

beat: $(STAMP)
	@$(WITH_SERVICES) exec $(BIN)/celery -A portal beat --loglevel INFO \
		--scheduler django_celery_beat.schedulers:DatabaseScheduler

# The browser test drives the admin in the system's Chromium. Install it only
# where that is possible without asking: as root, with apt-get, when missing.
# Playwright itself never downloads a browser here.
browser:
	@if [ ! -x /usr/bin/chromium ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "Installing chromium for the browser test"; \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } \
			|| echo "Could not install chromium; the browser test will be skipped." >&2; \
	fi

# The whole product on real services: seed, serve, drive a simulated fleet,
# print a summary, then keep serving on 127.0.0.1:$(PORT) until Ctrl-C.
# KEYPLANE_DEMO_EXIT=1 make demo verifies the scenario and exits instead.
demo: $(STAMP)
	@$(WITH_SERVICES) $(BIN)/python manage.py migrate_schemas --shared --noinput -v 0 && \
	$(BIN)/python manage.py migrate_schemas --noinput -v 0 && \
	$(BIN)/python manage.py bootstrap_platform && \
	KEYPLANE_BASE_URL=http://127.0.0.1:$(PORT) exec $(BIN)/python manage.py run_demo --port $(PORT)

stop:
	bin/services stop

clean: stop
	rm -rf $(VENV) .keyplane
