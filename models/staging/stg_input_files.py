"""One row per file the dbt var `transactions_path` matches: how to read it, and its data rows
counted without DuckDB's reader (customer_segmentation/ingest.py)."""

from pathlib import Path

from customer_segmentation.ingest import input_files
from customer_segmentation.refresh import previous_table


def model(dbt, session):
    dbt.config(materialized="table")
    # config transactions_path comes from the dbt var (stg_input_files.yml, where this model
    # is documented); ingest validates it.
    # a file unchanged since the last build (name, path, size, time) is not read again
    manifest = input_files(
        session,
        dbt.config.get("transactions_path"),
        Path.cwd(),
        previous_table(session, dbt.this),
    )
    return session.from_arrow(manifest)
