{#- on-run-start hook: check every var before any model runs. Renders no SQL.
    The vars are the ones dbt_project.yml declares under `vars:` (read through `adapter.config`,
    which dbt hands to Jinja, as dbt resolves them: global, then the block scoped to this
    project); they must be exactly the vars of `var_spec` (macros/var_spec.sql), the one spec
    of them. A name given with --vars that is not declared (a misspelling would otherwise be
    ignored) fails, listing the known names; each declared var is checked by `validated_var`,
    and the forget list's file by `forget_list`. -#}
{% macro validate_all_vars() -%}
    {%- set spec = var_spec() -%}
    {%- set project_vars = adapter.config.vars.to_dict() -%}
    {%- set declared = [] -%}
    {%- for name, value in project_vars.items() -%}
        {%- set names = value.keys() if name == project_name and value is mapping else [name] -%}
        {%- for var_name in names if var_name not in declared -%}
            {%- do declared.append(var_name) -%}
        {%- endfor -%}
    {%- endfor -%}

    {%- set undeclared = spec.keys() | reject('in', declared) | list -%}
    {%- set unspecified = declared | reject('in', spec) | list -%}
    {%- if undeclared or unspecified -%}
        {%- do exceptions.raise_compiler_error(
            'dbt_project.yml `vars:` must declare the vars of macros/var_spec.sql, with their'
            ~ ' defaults, and no other: ' ~ ('not declared: ' ~ undeclared | join(', ') if undeclared else '')
            ~ ('; ' if undeclared and unspecified else '')
            ~ ('not in the spec: ' ~ unspecified | join(', ') if unspecified else '') ~ '.') -%}
    {%- endif -%}

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
        {%- do validated_var(name, spec) -%}
    {%- endfor -%}
    {#- the forget list's file: found, with a customer_id column of ids (macros/forget_list.sql) -#}
    {%- do forget_list() -%}
    select 1
{%- endmacro %}
