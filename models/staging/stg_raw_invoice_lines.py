"""Every data row of every input file, as text, with its file and row number."""

from pathlib import Path

from customer_segmentation.ingest import load_raw_lines


def model(dbt, session):
    dbt.config(materialized="table")
    # transactions_path is set from the dbt var in dbt_project.yml; ingest validates it.
    return load_raw_lines(session, dbt.config.get("transactions_path"), Path.cwd())
