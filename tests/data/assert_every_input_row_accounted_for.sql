-- Nothing lost, nothing counted twice, nothing malformed: every input file (every sheet of a
-- workbook) is reconciled in input_reconciliation (its data rows, counted without DuckDB's
-- reader, are exactly the rows placed in fct_order_lines and quarantined_transactions or
-- counted as a forgotten customer's, each once), and no rows are placed for a file that was
-- not read.
select * from {{ ref('input_reconciliation') }}
where not is_reconciled
