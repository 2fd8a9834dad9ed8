{#- The build's own records, in the build file (schema meta): which dbt invocation ran and how
    it ended, and which invocation last wrote each relation. Created when missing; rendered by
    the on-run-start and on-run-end hooks. -#}
{% macro create_build_records() -%}
    create schema if not exists meta;
    create table if not exists meta.dbt_invocations (
        invocation_id varchar primary key,
        command varchar not null,
        started_at timestamp with time zone not null,
        finished_at timestamp with time zone,
        status varchar not null,
        dbt_version varchar not null,
        dbt_vars varchar not null,
        relations struct(schema_name varchar, relation_name varchar)[] not null,
        is_full_selection boolean not null
    );
    create table if not exists meta.relation_writes (
        schema_name varchar not null,
        relation_name varchar not null,
        invocation_id varchar not null,
        written_at timestamp with time zone not null,
        primary key (schema_name, relation_name)
    )
{%- endmacro %}
