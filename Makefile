# Every target bootstraps .venv when it is missing; constraints.txt pins the tested dependency set.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export DAGSTER_HOME := $(CURDIR)/dagster_home
export MLFLOW_TRACKING_URI ?= sqlite:///$(CURDIR)/mlruns/mlflow.db
export TICKML_HOME ?= $(CURDIR)/.tickml
export PYTHONDONTWRITEBYTECODE := 1
# the suite waits on servers and subprocesses a lot: two pytest workers, whole files each (module fixtures)
TEST_WORKERS ?= 2

.PHONY: install demo test bench honesty ui serve stream feed lint clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24,<27"
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/tickml demo

test: $(STAMP)
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile

bench: $(STAMP)
	$(BIN)/python -m benchmarks

honesty: $(STAMP)
	$(BIN)/python -m benchmarks --only honesty

ui: $(STAMP)
	@echo "Dagster UI on http://127.0.0.1:3000, MLflow UI on http://127.0.0.1:5000 (Ctrl-C stops both)"
	$(BIN)/mlflow ui --backend-store-uri $(MLFLOW_TRACKING_URI) --default-artifact-root $(CURDIR)/mlruns --port 5000 & \
	  trap 'kill $$!' EXIT INT TERM; $(BIN)/dagster dev -w workspace.yaml -p 3000

serve: $(STAMP)
	$(BIN)/tickml serve

stream: $(STAMP)
	$(BIN)/tickml stream

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

clean:
	rm -rf .tickml mlruns/mlflow.db mlruns/[0-9]* mlruns/models dagster_home/storage dagster_home/history dagster_home/schedules dagster_home/.telemetry dagster_home/logs
