{#- The forget list (var `forget_customers_path`, docs/privacy.md): a CSV with a column
    `customer_id`, the customers whose lines no table may hold. Returns a dict:
    - `path`: the file, or none when the var is null (nothing forgotten);
    - `sql`: a select of the distinct ids (`customer_id`, bigint) read from the file where it
      lies, when the query runs: the ids are never written into SQL text, a table or a log;
    - `digest`: an MD5 of the sorted ids, part of every input file's version (a change of
      the list reads every file again); '' without a list, none before the build runs.
    An id is read as the cleaning reads customer_id (stg_invoice_lines): a whole number from
    1 to 10^15, `17850.0` is 17850. A file that is missing, lacks the column, or has a value
    that is not such a number fails the build, naming the file and the row (not the value).
    `check=false` skips the checks when a caller only needs the SQL. -#}
{% macro forget_list(check=true) -%}
    {%- set path = validated_var('forget_customers_path') -%}
    {%- if path is none -%}
        {{- return({'path': none, 'sql': none, 'digest': ''}) -}}
    {%- endif -%}
    {%- if path | select('in', '*?[]{}') | list -%}
        {%- do exceptions.raise_compiler_error(
            "Invalid value for dbt var 'forget_customers_path': " ~ tojson(path)
            ~ " must name one CSV file (no * ? [ ] { }).") -%}
    {%- endif -%}
    {%- set literal = sql_string_literal(path) -%}
    {%- set reader = 'read_csv(' ~ literal ~ ', header = true, all_varchar = true'
        ~ ', auto_detect = true, null_padding = true)' -%}
    {%- set id_expression -%}
        case
            when try_cast(trim(customer_id) as double)
                = floor(try_cast(trim(customer_id) as double))
                and try_cast(trim(customer_id) as double) between 1 and 1e15
                then cast(try_cast(trim(customer_id) as double) as bigint)
        end
    {%- endset -%}
    {%- set sql = 'select distinct ' ~ id_expression ~ ' as customer_id from ' ~ reader -%}
    {%- set result = {'path': path, 'sql': sql, 'digest': none} -%}
    {%- if execute and check -%}
        {%- set where = 'dbt var forget_customers_path = ' ~ tojson(path) -%}
        {%- set found = run_query(
            'select count(*) from glob(' ~ literal ~ ')'
        ).columns[0].values()[0] -%}
        {%- if found != 1 -%}
            {%- do exceptions.raise_compiler_error(
                'Forget list not found: ' ~ where ~ ' (relative to the project folder).') -%}
        {%- endif -%}
        {%- set columns = run_query(
            'select column_name from (describe select * from ' ~ reader ~ ')'
        ).columns[0].values() -%}
        {%- if 'customer_id' not in columns -%}
            {%- do exceptions.raise_compiler_error(
                'Forget list ' ~ path ~ ' has no column customer_id (its header: '
                ~ columns | join(', ') ~ '); ' ~ where ~ '.') -%}
        {%- endif -%}
        {%- set checked = run_query(
            'with list as (select row_number() over () as list_row, ' ~ id_expression
            ~ ' as id from ' ~ reader ~ ') select count(*) filter (where id is null), '
            ~ 'min(list_row) filter (where id is null), '
            ~ "md5(coalesce(string_agg(distinct cast(id as varchar), ',' order by "
            ~ "cast(id as varchar)), '')), count(distinct id) from list"
        ).rows[0] -%}
        {%- if checked[0] > 0 -%}
            {%- do exceptions.raise_compiler_error(
                'Forget list ' ~ path ~ ': ' ~ checked[0] ~ ' row(s) without a customer id'
                ~ ' (a whole number from 1 to 10^15), the first at data row ' ~ checked[1]
                ~ '; ' ~ where ~ '.') -%}
        {%- endif -%}
        {%- do result.update({'digest': checked[2], 'ids': checked[3]}) -%}
    {%- endif -%}
    {{- return(result) -}}
{%- endmacro %}
