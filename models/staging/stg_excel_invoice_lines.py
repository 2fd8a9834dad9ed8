"""The data rows of every sheet of the Excel workbooks among the inputs (none: no rows)."""

from pathlib import Path

from customer_segmentation.ingest import excel_lines


def model(dbt, session):
    dbt.config(materialized="table")
    return session.from_arrow(excel_lines(dbt.config.get("transactions_path"), Path.cwd()))
