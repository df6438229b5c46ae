# Every target bootstraps .venv when it is missing; constraints.txt pins the tested dependency set.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export DAGSTER_HOME := $(CURDIR)/dagster_home
export MLFLOW_TRACKING_URI ?= sqlite:///$(CURDIR)/mlruns/mlflow.db
export TICKML_HOME ?= $(CURDIR)/.tickml
export PYTHONDONTWRITEBYTECODE := 1
# the suite waits on servers and subprocesses a lot: two pytest workers, whole files each (module fixtures),
# the slowest files first (conftest.py SLOW_FIRST)
TEST_WORKERS ?= 2
UI_HOST ?= 127.0.0.1
DAGSTER_PORT ?= 3000
MLFLOW_PORT ?= 5000

.PHONY: install demo test bench honesty ui stack stack-down stack-status serve stream feed lint clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24,<27"
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/tickml demo

test: $(STAMP)
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

bench: $(STAMP)
	$(BIN)/python -m benchmarks

honesty: $(STAMP)
	$(BIN)/python -m benchmarks --only honesty

# Dagster and MLflow UIs; Ctrl-C, SIGINT or SIGTERM stops both with all they started (`tickml ui --help`)
ui: $(STAMP)
	exec $(BIN)/tickml ui --host $(UI_HOST) --dagster-port $(DAGSTER_PORT) --mlflow-port $(MLFLOW_PORT)

# The production shape on this machine, supervised (`tickml stack --help`): PostgreSQL, MLflow server, Dagster
# webserver and daemon, the scoring service and the stream; returns once all are healthy
stack: $(STAMP)
	$(BIN)/tickml stack up

stack-down: $(STAMP)
	$(BIN)/tickml stack down

stack-status: $(STAMP)
	$(BIN)/tickml stack status

serve: $(STAMP)
	$(BIN)/tickml serve

stream: $(STAMP)
	$(BIN)/tickml stream

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

clean:
	rm -rf .tickml mlruns/mlflow.db mlruns/[0-9]* mlruns/models dagster_home/storage dagster_home/history dagster_home/schedules dagster_home/.telemetry dagster_home/logs
