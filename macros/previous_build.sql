{#- `relation` as the last build left it, when a model may reuse it: it exists and the dbt
    command has no --full-refresh; else none. For table models that keep per-file results
    from one build to the next (docs/refresh.md); incremental models use is_incremental(). -#}
{% macro previous_build(relation) -%}
    {%- if not execute or flags.FULL_REFRESH or relation is none -%}
        {{ return(none) }}
    {%- endif -%}
    {{ return(load_relation(relation)) }}
{%- endmacro %}
