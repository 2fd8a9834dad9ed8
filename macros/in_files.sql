{#- SQL condition: `column` names one of `files` (stg_input_files.source_file names; a
    workbook's name covers its sheets, `book.xlsx[sheet]`), as literals, so that a filter on
    the view stg_raw_invoice_lines reads only those files. `false` for no file. -#}
{% macro in_files(column, files) -%}
    {%- set conditions = [] -%}
    {%- if files -%}
        {%- set literals = [] -%}
        {%- for f in files -%}
            {%- do literals.append(sql_string_literal(f)) -%}
        {%- endfor -%}
        {%- do conditions.append(column ~ ' in (' ~ literals | join(', ') ~ ')') -%}
        {%- for f in files if (f | lower).endswith('.xlsx') -%}
            {%- do conditions.append('starts_with(' ~ column ~ ', ' ~ sql_string_literal(f ~ '[') ~ ')') -%}
        {%- endfor -%}
    {%- endif -%}
    ({{ conditions | join(' or ') if conditions else 'false' }})
{%- endmacro %}
