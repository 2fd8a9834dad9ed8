# The two commands a newcomer needs: `make build` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DBT := $(BIN)/dbt
export DBT_PROFILES_DIR := $(CURDIR)
export DBT_SEND_ANONYMOUS_USAGE_STATS := false

.PHONY: setup setup-dagster test-setup build test lint publish report docs dagster bench clean \
	sample

setup: $(VENV)/.installed

$(VENV)/.installed: requirements.txt pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.txt
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	mkdir -p warehouse
	touch $@

## Dagster, for the scheduled refresh (`make dagster`) and its test: requirements-dagster.txt,
## installed with requirements.txt so that no pin of it moves. Not part of `make build`.
setup-dagster: $(VENV)/.installed-dagster

$(VENV)/.installed-dagster: requirements-dagster.txt $(VENV)/.installed
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dagster.txt
	touch $@

## The browser test of the report needs Debian's chromium and chromedriver (no browser is
## downloaded at run time); installed once, with sudo when not root.
test-setup: setup setup-dagster
	@if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends \
			chromium chromium-driver >/dev/null; \
	fi

## Set up, run `dbt build` (all models and data tests) on the bundled sample; its last node
## publishes the marts to the serving file that BI tools open (only when every model and test
## passed). Unit tests check the models' logic on fixtures, not the data: they run in
## `make test` (development and CI), not in the production build. `make build VARS='{...}'`
## passes dbt vars. Then the privacy step: after a change of the forget list, the build file
## is rewritten so that no freed block keeps a forgotten customer's rows (docs/privacy.md).
build: setup
	$(DBT) build --exclude-resource-type unit_test $(if $(VARS),--vars '$(VARS)')
	$(BIN)/python -m customer_segmentation.privacy

## Republish the last complete, passing `dbt build` recorded in the build file.
publish: setup
	$(BIN)/python -m customer_segmentation.publish

## The visual report: one self-contained HTML file drawn from the serving file.
report: setup
	$(BIN)/python -m customer_segmentation.report

## The documentation site as one HTML file, target/static_index.html: every model, column and
## test, the lineage graph; column types from the build file when `make build` has run.
docs: setup
	$(DBT) docs generate --static
	@echo "Open target/static_index.html in a browser."

## The scheduled refresh: Dagster's UI on http://127.0.0.1:$(DAGSTER_PORT) and its daemon, which
## runs the daily schedule (`dbt build` at 06:00 UTC, one run at a time); docs/scheduling.md.
DAGSTER_HOME ?= $(CURDIR)/warehouse/dagster
DAGSTER_PORT ?= 3000
dagster: setup-dagster
	mkdir -p $(DAGSTER_HOME)
	cp dagster.yaml $(DAGSTER_HOME)/dagster.yaml
	DAGSTER_HOME=$(DAGSTER_HOME) $(BIN)/dagster dev -m customer_segmentation.orchestration \
		-p $(DAGSTER_PORT)

## Set up, then run the whole suite: dbt build with data and unit tests, pytest, sqlfluff, ruff.
## pytest runs on two workers (pytest-xdist; the tests of a file that share a module-scoped
## build stay on one worker, so it is made once), the longest files first
## (tests/pytest/conftest.py): most tests wait on a dbt process, and two at a time fill two
## cores. Tests of the default sample build read copies of the one this target makes first, in
## a folder of its own (target/sample_build, SAMPLE_BUILD_DIR).
test: test-setup
	rm -rf target/sample_build && mkdir -p target/sample_build && set -o pipefail && \
		DUCKDB_PATH=target/sample_build/retail.duckdb \
		SERVING_DUCKDB_PATH=target/sample_build/serving.duckdb \
		DUCKDB_TEMP_DIRECTORY=target/sample_build/tmp \
		$(DBT) build --target-path target/sample_build/target \
		--log-path target/sample_build/logs 2>&1 | tee target/sample_build/build.log
	SAMPLE_BUILD_DIR=target/sample_build $(BIN)/pytest -q -n 2 --dist loadgroup --durations=15
	$(MAKE) lint

## sqlfluff compiles the models against an empty DuckDB file: the incremental models then lint as
## a first build renders them, whatever the build file holds.
lint: setup
	$(BIN)/ruff check .
	mkdir -p target && rm -f target/sqlfluff.duckdb*
	DUCKDB_PATH=target/sqlfluff.duckdb $(BIN)/sqlfluff lint models macros tests/data
	rm -f target/sqlfluff.duckdb*

## Benchmark: the production, full and path-to-segments dbt builds vs the pandas notebook, one
## bare DuckDB query + KMeans and a same-work DuckDB reference, on inputs cached in .bench/
## (docs/performance.md). Sizes and options:
## make bench BENCH_ARGS="--sizes 1M,10M --inputs generated,repeated"
BENCH_ARGS ?=
bench: setup
	$(BIN)/python scripts/bench.py $(BENCH_ARGS)

## Regenerate the bundled sample with the project's generator.
sample: setup
	$(BIN)/python -m customer_segmentation.generate --rows 60000 --seed 42 --output data/sample/online_retail_sample.csv

clean:
	rm -rf target logs warehouse dbt_packages
