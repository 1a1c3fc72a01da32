# Keyplane developer commands. Every target that needs services brings up
# PostgreSQL and Redis first (bin/services); see README.md.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PORT ?= 8000
WITH_SERVICES = bin/services up && set -a && . .keyplane/services.env && set +a &&

.PHONY: install lint typecheck test run worker beat demo stop clean

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
test: $(STAMP)
	@$(WITH_SERVICES) $(BIN)/python manage.py check --fail-level WARNING && \
	$(BIN)/pytest $(PYTEST_ARGS); status=$$?; \
	if [ $$status -eq 5 ]; then echo "make test: no tests were collected" >&2; exit 1; fi; \
	exit $$status

run: $(STAMP)
	@$(WITH_SERVICES) $(BIN)/python manage.py migrate_schemas --shared --noinput && \
	$(BIN)/python manage.py bootstrap_platform && \
	exec $(BIN)/gunicorn portal.wsgi:application --bind 127.0.0.1:$(PORT) --workers 2 \
		--access-logfile - --error-logfile -

worker: $(STAMP)
	@$(WITH_SERVICES) exec $(BIN)/celery -A portal worker --loglevel INFO

beat: $(STAMP)
	@$(WITH_SERVICES) exec $(BIN)/celery -A portal beat --loglevel INFO \
		--scheduler django_celery_beat.schedulers:DatabaseScheduler

stop:
	bin/services stop

clean: stop
	rm -rf $(VENV) .keyplane
