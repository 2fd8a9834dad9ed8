{#- Post-hook of every model and seed (dbt_project.yml), run inside the transaction that
    writes the relation: the record commits with the relation or not at all. The time is
    taken when the hook runs, after the relation is written (DuckDB's now() would give the
    start of the transaction). -#}
{% macro record_relation_write() -%}
    insert or replace into meta.relation_writes (
        schema_name, relation_name, invocation_id, written_at
    )
    values (
        {{ sql_string_literal(this.schema) }},
        {{ sql_string_literal(this.identifier) }},
        {{ sql_string_literal(invocation_id) }},
        cast({{ sql_string_literal(
            modules.datetime.datetime.now(modules.pytz.utc).isoformat()
        ) }} as timestamp with time zone)
    )
{%- endmacro %}
