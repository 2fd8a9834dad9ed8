"""How to read each input file matched by the dbt var `transactions_path` (one row per file)."""

from pathlib import Path

from customer_segmentation.ingest import input_files


def model(dbt, session):
    dbt.config(materialized="table")
    # transactions_path is set from the dbt var in dbt_project.yml; ingest validates it.
    manifest = input_files(session, dbt.config.get("transactions_path"), Path.cwd())
    return session.from_arrow(manifest)
