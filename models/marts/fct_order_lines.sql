-- One row per accepted invoice line: sales and customer returns, in GBP (int_order_lines as
-- users query it; the enforced contract in fct_order_lines.yml fixes its columns and types).
-- A view: the input files are read where they lie, never copied; the serving file holds it
-- as a table.
{{ config(materialized='view') }}

with

order_lines as (

    select * from {{ ref('int_order_lines') }}

)

select * from order_lines
