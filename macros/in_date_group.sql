{#- A filter on `column` (a date) that keeps the dates of the group being built by the
    materialization table_in_date_groups (the session variables date_group_first and
    date_group_last, set around each group's statement), and every date when none is set: in
    unit tests, `dbt show` and compiled SQL run by hand. -#}
{% macro in_date_group(column) -%}
    {{ column }} between coalesce(getvariable('date_group_first'), {{ column }})
    and coalesce(getvariable('date_group_last'), {{ column }})
{%- endmacro %}
