{#- on-run-start hook: check every var before any model runs. Renders no SQL.
    The vars are the ones dbt_project.yml declares under `vars:` (the one list of them; read
    through `adapter.config`, which dbt hands to Jinja, as dbt resolves them: global, then the
    block scoped to this project). A name given with --vars that is not declared (a misspelling
    would otherwise be ignored) fails, listing the known names; each declared var is checked by
    `validated_var`, which fails on a var it has no spec for. -#}
{% macro validate_all_vars() -%}
    {%- set project_vars = adapter.config.vars.to_dict() -%}
    {%- set declared = [] -%}
    {%- for name, value in project_vars.items() -%}
        {%- set names = value.keys() if name == project_name and value is mapping else [name] -%}
        {%- for var_name in names if var_name not in declared -%}
            {%- do declared.append(var_name) -%}
        {%- endfor -%}
    {%- endfor -%}

    {%- set cli_vars = invocation_args_dict.get('vars') or {} -%}
    {%- if cli_vars is string -%}
        {%- set cli_vars = fromyaml(cli_vars) or {} -%}
    {%- endif -%}
    {%- set unknown = cli_vars.keys() | reject('in', declared) | sort -%}
    {%- if unknown -%}
        {%- do exceptions.raise_compiler_error(
            'Unknown dbt var' ~ ('s' if unknown | length > 1 else '') ~ ' in --vars: '
            ~ unknown | join(', ') ~ '. Known vars (dbt_project.yml): ' ~ declared | join(', ')
            ~ '.') -%}
    {%- endif -%}

    {%- for name in declared -%}
        {%- do validated_var(name) -%}
    {%- endfor -%}
    select 1
{%- endmacro %}
