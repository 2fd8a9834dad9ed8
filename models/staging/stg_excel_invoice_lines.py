"""The data rows of every sheet of the Excel workbooks among the inputs (none: no rows)."""

from customer_segmentation.ingest import excel_lines
from customer_segmentation.privacy import forget_ids
from customer_segmentation.refresh import previous_table


def model(dbt, session):
    dbt.config(materialized="table")
    # The workbooks stg_input_files lists: one resolution of transactions_path for all formats.
    # a workbook unchanged since the last build (name, SHA-256, forget list) is not read again
    previous = previous_table(session, dbt.this)
    # config forget_customers_path (stg_excel_invoice_lines.yml): the forget list's file,
    # checked by on-run-start (macros/forget_list.sql); '' when nothing is forgotten
    forgotten = forget_ids(session, dbt.config.get("forget_customers_path"))
    return session.from_arrow(excel_lines(dbt.ref("stg_input_files"), previous, forgotten))
