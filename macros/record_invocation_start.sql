{#- on-run-start hook, first of all: record this dbt invocation as `running`, with the
    relations the project's graph holds (models, seeds and snapshots of this project, enabled,
    not ephemeral) and whether every one of them and every data test is selected (schema meta,
    the records' own, aside) with all their rows (not --empty, not --sample). on-run-end marks
    it passed or failed; a killed run stays `running`. -#}
{% macro record_invocation_start() -%}
    {%- if not execute -%}
        {{ return('') }}
    {%- endif -%}
    {%- set relations = [] -%}
    {%- set ns = namespace(is_full_selection=not (
        invocation_args_dict.get('empty') or invocation_args_dict.get('sample'))) -%}
    {%- for node in graph.nodes.values()
            if node.package_name == project_name and node.config.enabled -%}
        {%- set is_relation = node.resource_type in ['model', 'seed', 'snapshot']
            and node.config.materialized != 'ephemeral' -%}
        {%- if is_relation -%}
            {%- do relations.append(
                "{'schema_name': " ~ sql_string_literal(node.schema)
                ~ ", 'relation_name': " ~ sql_string_literal(node.alias or node.name) ~ "}"
            ) -%}
        {%- endif -%}
        {%- if ((is_relation and node.schema != 'meta') or node.resource_type == 'test')
                and node.unique_id not in selected_resources -%}
            {%- set ns.is_full_selection = false -%}
        {%- endif -%}
    {%- endfor -%}
    {{ create_build_records() }};
    insert into meta.dbt_invocations (
        invocation_id, command, started_at, status, dbt_version, dbt_vars, relations,
        is_full_selection
    )
    values (
        {{ sql_string_literal(invocation_id) }},
        {{ sql_string_literal(flags.WHICH) }},
        now(),
        'running',
        {{ sql_string_literal(dbt_version) }},
        {{ sql_string_literal(tojson(json_safe(invocation_args_dict.get('vars') or {}),
            sort_keys=true)) }},
        cast([{{ relations | sort | join(', ') }}]
            as struct(schema_name varchar, relation_name varchar)[]),
        {{ ns.is_full_selection }}
    )
{%- endmacro %}

