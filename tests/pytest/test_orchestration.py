"""The scheduled refresh (customer_segmentation/orchestration.py, docs/scheduling.md): Dagster
materializes every dbt model and seed of the project on the bundled sample, in this process,
and the build publishes the serving file; the daily schedule skips while a run is in flight;
`make dagster` serves it, one run at a time.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
import urllib.request

import dagster as dg
import duckdb
import pytest
from conftest import PROJECT_DIR

from customer_segmentation import orchestration


@pytest.fixture(scope="module")
def refreshed(tmp_path_factory):
    """The job `refresh` run in process on the sample, with its own build and serving files
    and dbt target (DBT_TARGET_PATH: dagster-dbt writes each invocation's target under it)."""
    workdir = tmp_path_factory.mktemp("dagster")
    with pytest.MonkeyPatch.context() as env:
        for name, value in {
            "DUCKDB_PATH": workdir / "retail.duckdb",
            "SERVING_DUCKDB_PATH": workdir / "serving.duckdb",
            "DUCKDB_TEMP_DIRECTORY": workdir / "duckdb_tmp",
            "DBT_TARGET_PATH": workdir / "target",
            "DAGSTER_HOME": workdir / "dagster_home",
            "DBT_PARTIAL_PARSE": "false",
        }.items():
            env.setenv(name, str(value))
        (workdir / "dagster_home").mkdir()
        project = orchestration.dbt_project(target_path=workdir / "target")
        defs = orchestration.build_definitions(project)
        job = defs.resolve_job_def(orchestration.JOB_NAME)
        with dg.instance_for_test() as instance:
            result = job.execute_in_process(instance=instance, raise_on_error=False)
        yield workdir, defs, result


def test_dagster_materializes_every_model_and_publishes(refreshed):
    workdir, defs, result = refreshed
    failures = [
        event.message for event in result.all_events if event.event_type_value == "STEP_FAILURE"
    ]
    assert result.success, failures
    asset_keys = defs.resolve_asset_graph().get_all_asset_keys()
    materialized = {event.asset_key for event in result.get_asset_materialization_events()}
    assert len(asset_keys) > 50
    assert materialized == asset_keys
    checks = [
        event.asset_check_evaluation_data
        for event in result.all_events
        if event.event_type_value == "ASSET_CHECK_EVALUATION"
    ]
    assert len(checks) > 100 and all(check.passed for check in checks)

    # the build's last node published: the serving file holds this build's marts, row for row
    serving = workdir / "serving.duckdb"
    assert serving.is_file()
    with duckdb.connect(str(workdir / "retail.duckdb"), read_only=True) as build:
        (invocation,) = build.execute(
            "select invocation_id from meta.dbt_invocations where status = 'passed'"
        ).fetchone()
        marts = build.execute(
            "select table_name, estimated_size from duckdb_tables() "
            "where schema_name = 'marts' order by table_name"
        ).fetchall()
        published = build.execute("select is_published from meta.publish_serving_file").fetchone()[
            0
        ]
    assert published
    with duckdb.connect(str(serving), read_only=True) as con:
        build_id, tables = con.execute(
            "select build_id, published_tables from marts.build_info"
        ).fetchone()
        counts = {
            name: con.execute(f'select count(*) from marts."{name}"').fetchone()[0]
            for name, _ in marts
        }
    assert build_id == invocation
    assert {"monthly_kpis", "customer_segments", "dim_dates"} <= set(tables.split(", "))
    assert counts == {name: rows for name, rows in marts}


def test_the_schedule_skips_while_a_run_is_in_flight(refreshed):
    _, defs, _ = refreshed
    schedule = defs.resolve_schedule_def("daily_refresh")
    assert schedule.cron_schedule == "0 6 * * *"
    with dg.instance_for_test() as instance:
        [request] = schedule.evaluate_tick(
            dg.build_schedule_context(instance=instance)
        ).run_requests
        assert request.job_name in (None, orchestration.JOB_NAME)
        for status in (dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTED):
            run = instance.add_run(
                dg.DagsterRun(
                    job_name=orchestration.JOB_NAME, run_id=f"{status.value}-run", status=status
                )
            )
            tick = schedule.evaluate_tick(dg.build_schedule_context(instance=instance))
            assert not tick.run_requests and f"run {run.run_id} of refresh" in tick.skip_message
            instance.report_run_canceled(run)
        # a run of another job does not hold it
        instance.add_run(
            dg.DagsterRun(job_name="other", run_id="other-run", status=dg.DagsterRunStatus.STARTED)
        )
        assert schedule.evaluate_tick(dg.build_schedule_context(instance=instance)).run_requests


def graphql(port: int, query: str) -> dict:
    """The answer of the UI's GraphQL endpoint to `query`."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)["data"]


def test_make_dagster_serves_the_daily_schedule_one_run_at_a_time(tmp_path):
    """`make dagster` as docs/scheduling.md gives it (on a free port, with its own Dagster
    home): its UI lists the schedule as running at 06:00 UTC, its instance runs one run at a
    time, and the daemon's scheduler is up."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    home = tmp_path / "dagster_home"
    log = (tmp_path / "dagster.log").open("w")
    proc = subprocess.Popen(
        ["make", "--no-print-directory", "dagster", f"DAGSTER_PORT={port}", f"DAGSTER_HOME={home}"],
        cwd=PROJECT_DIR,
        env={
            **os.environ,
            "DBT_TARGET_PATH": str(tmp_path / "target"),
            "DBT_LOG_PATH": str(tmp_path / "logs"),
            "DUCKDB_PATH": str(tmp_path / "retail.duckdb"),
            "SERVING_DUCKDB_PATH": str(tmp_path / "serving.duckdb"),
        },
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    location = "customer_segmentation.orchestration"
    query = f"""{{
        schedulesOrError(repositorySelector: {{
            repositoryName: "__repository__", repositoryLocationName: "{location}"
        }}) {{
            ... on Schedules {{
                results {{ name cronSchedule executionTimezone scheduleState {{ status }} }}
            }}
        }}
        instance {{
            runQueueConfig {{ maxConcurrentRuns }}
            daemonHealth {{ allDaemonStatuses {{ daemonType healthy }} }}
        }}
    }}"""
    try:
        deadline = time.monotonic() + 240
        while True:
            assert proc.poll() is None, (tmp_path / "dagster.log").read_text()[-3000:]
            assert time.monotonic() < deadline, (tmp_path / "dagster.log").read_text()[-3000:]
            try:
                data = graphql(port, query)
            except OSError:  # not listening yet
                data = None
            health = ((data or {}).get("instance") or {}).get("daemonHealth") or {}
            daemons = {s["daemonType"]: s["healthy"] for s in health.get("allDaemonStatuses", [])}
            if data and data["schedulesOrError"].get("results") and daemons.get("SCHEDULER"):
                break
            time.sleep(2)
    finally:
        with contextlib.suppress(ProcessLookupError):  # gone already when make failed
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        log.close()
    assert data["schedulesOrError"]["results"] == [
        {
            "name": "daily_refresh",
            "cronSchedule": "0 6 * * *",
            "executionTimezone": "UTC",
            "scheduleState": {"status": "RUNNING"},
        }
    ]
    assert data["instance"]["runQueueConfig"] == {"maxConcurrentRuns": 1}
    assert (home / "dagster.yaml").read_text() == (PROJECT_DIR / "dagster.yaml").read_text()


def test_the_cron_line_runs_what_the_schedule_runs():
    """docs/scheduling.md's cron line for those without an orchestrator: the same time, one
    build at a time, and `make build`, whose command is the job's."""
    doc = (PROJECT_DIR / "docs" / "scheduling.md").read_text()
    assert "0 6 * * * cd /path/to/project && flock -n warehouse/refresh.lock make build" in doc
    makefile = (PROJECT_DIR / "Makefile").read_text()
    assert f"$(DBT) {' '.join(orchestration.BUILD_ARGS)}" in makefile


def test_definitions_load_without_running_dbt_when_the_manifest_exists(refreshed, tmp_path):
    """Outside `dagster dev`, an existing manifest is used as it is: no dbt parse at load."""
    workdir, _, _ = refreshed
    target = tmp_path / "target"
    target.mkdir()
    (target / "manifest.json").write_bytes((workdir / "target" / "manifest.json").read_bytes())
    project = orchestration.dbt_project(target_path=target)
    assert sorted(path.name for path in target.iterdir()) == ["manifest.json"]
    assert project.manifest_path == target / "manifest.json"


def test_the_scheduled_build_takes_its_vars_from_the_environment(monkeypatch):
    monkeypatch.delenv(orchestration.VARS_ENV, raising=False)
    assert orchestration.build_args() == ["build", "--exclude-resource-type", "unit_test"]
    monkeypatch.setenv(orchestration.VARS_ENV, '{transactions_path: "exports/*.csv"}')
    assert orchestration.build_args()[-2:] == ["--vars", '{transactions_path: "exports/*.csv"}']
