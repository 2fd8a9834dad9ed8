"""The scheduled refresh with Dagster: `make dagster` (docs/scheduling.md).

Every model, seed and data test of the dbt project becomes a Dagster asset or asset check,
read from dbt's manifest; the job `refresh` runs `dbt build` on them, as `make build` does, so
its last node publishes the serving file, then the privacy step of `make build`
(customer_segmentation/privacy.py); a daily schedule starts it. One run at a time: DuckDB
lets one process write the build file, so the schedule skips a tick while a run of the job is
queued or running, and the instance of `make dagster` (dagster.yaml) runs one run at a time.

Optional: Dagster is installed by `make test` and `make dagster` (requirements-dagster.txt),
not by `make build`; nothing else in the package imports this module.
"""

import os
import sys
from pathlib import Path

import dagster as dg
from dagster import AssetExecutionContext
from dagster_dbt import DbtCliResource, DbtProject, dbt_assets

from customer_segmentation import privacy

PROJECT_DIR = Path(__file__).resolve().parents[1]
#: The dbt of this virtualenv, whether or not it is on PATH.
DBT_EXECUTABLE = str(Path(sys.executable).with_name("dbt"))
JOB_NAME = "refresh"
#: Every day at 06:00 in SCHEDULE_TIMEZONE (the cron line of docs/scheduling.md, without
#: Dagster, is the same).
SCHEDULE_CRON = "0 6 * * *"
SCHEDULE_TIMEZONE = os.environ.get("REFRESH_TIMEZONE", "UTC")
#: `make build`'s command: every model, seed and data test; unit tests are for `make test`.
BUILD_ARGS = ("build", "--exclude-resource-type", "unit_test")
#: dbt vars for the scheduled build, as `--vars` takes them (YAML), e.g.
#: `{transactions_path: "exports/*.csv"}`; read when a run starts. dbt validates them.
VARS_ENV = "REFRESH_DBT_VARS"
#: Run states in which a run may still write the build file.
IN_FLIGHT = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]


def dbt_project(project_dir: Path = PROJECT_DIR, target_path: Path | None = None) -> DbtProject:
    """The dbt project, with its manifest: `dbt parse` writes it when there is none yet, and
    each time `dagster dev` loads the definitions, so that they follow the project."""
    project = DbtProject(
        project_dir=project_dir,
        profiles_dir=project_dir,
        target_path=target_path or Path(os.environ.get("DBT_TARGET_PATH", "target")),
    )
    if os.environ.get("DAGSTER_IS_DEV_CLI") or not project.manifest_path.exists():
        DbtCliResource(project_dir=project, dbt_executable=DBT_EXECUTABLE).cli(
            ["parse", "--quiet"], target_path=project.target_path
        ).wait()
    return project


def build_args() -> list[str]:
    """The dbt command of a run: `make build`'s, with the vars of REFRESH_DBT_VARS if set."""
    dbt_vars = os.environ.get(VARS_ENV, "").strip()
    return [*BUILD_ARGS, *(["--vars", dbt_vars] if dbt_vars else [])]


def build_definitions(project: DbtProject) -> dg.Definitions:
    """The dbt assets of `project`, the job that builds them all and its daily schedule."""

    @dbt_assets(manifest=project.manifest_path, project=project)
    def customer_segmentation_dbt(context: AssetExecutionContext, dbt: DbtCliResource):
        yield from dbt.cli(build_args(), context=context).stream()
        # as `make build`: what a build under a forget list leaves outside its tables
        build = PROJECT_DIR / (os.environ.get("DUCKDB_PATH") or privacy.DEFAULT_BUILD_PATH)
        context.log.info(privacy.clean_after_build(build).describe(build))

    refresh = dg.define_asset_job(
        JOB_NAME,
        selection=dg.AssetSelection.assets(customer_segmentation_dbt),
        executor_def=dg.in_process_executor,
        description="`dbt build` of every model, seed and data test; publishes the serving file.",
    )

    @dg.schedule(
        job=refresh,
        cron_schedule=SCHEDULE_CRON,
        execution_timezone=SCHEDULE_TIMEZONE,
        default_status=dg.DefaultScheduleStatus.RUNNING,
    )
    def daily_refresh(context: dg.ScheduleEvaluationContext):
        in_flight = context.instance.get_run_records(
            dg.RunsFilter(job_name=JOB_NAME, statuses=IN_FLIGHT), limit=1
        )
        if in_flight:
            return dg.SkipReason(
                f"run {in_flight[0].dagster_run.run_id} of {JOB_NAME} is still queued or running: "
                "DuckDB allows one writer"
            )
        return dg.RunRequest()

    return dg.Definitions(
        assets=[customer_segmentation_dbt],
        jobs=[refresh],
        schedules=[daily_refresh],
        resources={"dbt": DbtCliResource(project_dir=project, dbt_executable=DBT_EXECUTABLE)},
    )


@dg.definitions
def defs() -> dg.Definitions:
    """What `dagster dev -m customer_segmentation.orchestration` loads."""
    return build_definitions(dbt_project())
