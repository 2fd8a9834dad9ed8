{#- on-run-end, last: what this build did to the input files (int_invoice_line_files), the
    same words as marts.build_info: `full` when it read every file, else `refresh`, and the
    files added, changed and removed. Nothing when the build did not make that table. -#}
{% macro log_build_changes(results) -%}
    {%- set node_id = 'model.' ~ project_name ~ '.int_invoice_line_files' -%}
    {%- set made = results | selectattr('node.unique_id', 'equalto', node_id)
        | selectattr('status', 'equalto', 'success') | list -%}
    {%- if not made -%}
        {{ return('') }}
    {%- endif -%}
    {%- set rows = run_query('select build_change, count(*) as files, '
        ~ "string_agg(input_file, ', ' order by input_file) as names "
        ~ 'from ' ~ made[0].node.relation_name ~ ' group by build_change').rows -%}
    {%- set counts, names = {}, {} -%}
    {%- for row in rows -%}
        {%- do counts.update({row['build_change']: row['files']}) -%}
        {%- do names.update({row['build_change']: row['names']}) -%}
    {%- endfor -%}
    {%- set parts = [] -%}
    {%- for change in ['added', 'changed', 'removed'] -%}
        {%- do parts.append(counts.get(change, 0) ~ ' ' ~ change
            ~ (' (' ~ names[change] ~ ')' if change in names else '')) -%}
    {%- endfor -%}
    {{ log(('refresh' if counts.get('unchanged') else 'full') ~ ' build: input files '
        ~ parts | join(', ') ~ ', ' ~ counts.get('unchanged', 0) ~ ' unchanged.', info=true) }}
{%- endmacro %}
