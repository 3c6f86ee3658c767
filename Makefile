# The README's commands. Each sets up what it needs on a fresh machine (Python 3.11+).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test lint venv migrate demo bench clean messages

venv: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required (set PYTHON=...)")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

migrate: venv
	$(BIN)/python manage.py migrate --noinput

demo: migrate
	$(BIN)/python manage.py load_demo_data
	$(BIN)/python manage.py load_billing_demo
	$(BIN)/python manage.py load_settlements_demo

# Embedded default: SQLite, local files, in-process tasks, demo data. config.asgi serves Django
# and the MCP endpoint (/mcp/) together.
run: demo
	$(BIN)/uvicorn config.asgi:application --host $(HOST) --port $(PORT)

# Whole suite. Uses DATABASE_URL / REDIS_URL / S3_ENDPOINT_URL when set; skips (and says why) otherwise.
test: venv
	DJANGO_SETTINGS_MODULE=config.settings.test $(BIN)/python -m pytest $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check .

# Benchmarks against PostgreSQL (BENCH_DATABASE_URL or DATABASE_URL, else the local server);
# see docs/BENCHMARKS.md. make itself takes no --options: `make bench SCALE=0.01`, or pass any
# option of `python -m bench` in BENCH_ARGS, e.g. BENCH_ARGS="--scale 0.1 --runs 5 --only billing".
bench: venv
	$(BIN)/python -m bench $(if $(SCALE),--scale $(SCALE)) $(BENCH_ARGS)

# Refresh the Polish and Norwegian catalogues from the code and templates, then compile them.
# Needs GNU gettext (apt-get install gettext); the compiled .mo files are committed.
messages: venv
	$(BIN)/python manage.py makemessages --no-obsolete -l pl -l nb --ignore='.venv/*' --ignore='staticfiles/*' --ignore='tests/*'
	$(BIN)/python manage.py compilemessages -l pl -l nb --ignore='.venv/*'

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache db.sqlite3 media staticfiles
