{#- A value as JSON can hold it, for tojson: dates and other objects YAML can give
    (`--vars '{as_of_date: 2011-12-09}'`) as their text; lists and mappings item by item. -#}
{% macro json_safe(value) -%}
    {%- if value is mapping -%}
        {%- set out = {} -%}
        {%- for key, item in value.items() -%}
            {%- do out.update({key | string: json_safe(item)}) -%}
        {%- endfor -%}
        {{ return(out) }}
    {%- elif value is string or value is number or value is boolean or value is none -%}
        {{ return(value) }}
    {%- elif value is iterable -%}
        {%- set out = [] -%}
        {%- for item in value -%}
            {%- do out.append(json_safe(item)) -%}
        {%- endfor -%}
        {{ return(out) }}
    {%- else -%}
        {{ return(value | string) }}
    {%- endif -%}
{%- endmacro %}
