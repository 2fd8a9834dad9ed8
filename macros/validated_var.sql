{#- The one way a dbt var reaches SQL: read it, check it against its entry in `var_spec`
    (macros/var_spec.sql), fail the build with a message naming the var when it is wrong.
    customer_segmentation/var_spec.py runs the same checks in Python, with the same messages.
    `spec` saves re-reading the spec when the caller has it (validate_all_vars). -#}
{% macro validated_var(name, spec=none) -%}
    {%- set spec = spec if spec is not none else var_spec() -%}
    {%- if name not in spec -%}
        {%- do exceptions.raise_compiler_error("validated_var: no spec for var '" ~ name ~ "' in macros/var_spec.sql") -%}
    {%- endif -%}
    {%- set entry = spec[name] -%}
    {%- set kind = entry['type'] -%}
    {%- set re = modules.re -%}
    {%- set value = var(name) -%}
    {%- set ns = namespace(problem=none) -%}
    {%- set lo, hi = entry.get('range') or [none, none] -%}
    {%- set choices = entry.get('choices') or [] -%}
    {%- set item = entry.get('item') -%}
    {%- set null_means = entry.get('null_means') -%}

    {%- if value is none and null_means is not none -%}
        {#- null is allowed and means `null_means` -#}

    {%- elif kind == 'path' -%}
        {%- if value is not string or value | trim == '' or '\x00' in value or '\n' in value -%}
            {%- set suffixes = entry['suffixes'] -%}
            {%- set either = suffixes[-1] if suffixes | length == 1
                else suffixes[:-1] | join(', ') ~ ' or ' ~ suffixes[-1] -%}
            {%- set ns.problem = 'must be a non-empty path or glob of ' ~ either ~ ' files' -%}
        {%- endif -%}

    {%- elif kind == 'enum' -%}
        {%- if value is not string or value not in choices -%}
            {%- set quoted = [] -%}
            {%- for choice in choices -%}
                {%- do quoted.append("'" ~ choice ~ "'") -%}
            {%- endfor -%}
            {%- set ns.problem = 'must be ' ~ quoted[:-1] | join(', ') ~ ' or ' ~ quoted[-1] -%}
        {%- endif -%}

    {%- elif kind == 'codes' -%}
        {%- if value is string or value is not iterable or value is mapping -%}
            {%- set ns.problem = 'must be a list of ' ~ item ~ 's, e.g. ' ~ entry['example'] -%}
        {%- else -%}
            {%- for code in value if ns.problem is none -%}
                {%- if code is not string or not re.fullmatch(entry['pattern'], code) -%}
                    {%- set ns.problem = 'entry ' ~ tojson(json_safe(code)) ~ ' is not a '
                                         ~ item ~ ' (' ~ entry['pattern_help'] ~ ')' -%}
                {%- endif -%}
            {%- endfor -%}
        {%- endif -%}

    {%- elif kind == 'number' -%}
        {#- NaN is not equal to itself and inf - inf is NaN: neither may reach SQL (as `nan`) -#}
        {%- if value is boolean or value is not number or value != value or value - value != 0
              or value < lo or value > hi -%}
            {%- set ns.problem = 'must be a finite number from ' ~ lo ~ ' to ' ~ hi -%}
        {%- endif -%}

    {%- elif kind == 'boolean' -%}
        {%- if value is not boolean -%}
            {%- set ns.problem = 'must be true or false' -%}
        {%- endif -%}

    {%- elif kind == 'date' -%}
        {#- a date given unquoted (--vars '{as_of_date: 2011-12-09}') arrives as a date -#}
        {%- if value is not string and value.isoformat is defined -%}
            {%- set value = value.isoformat() -%}
        {%- endif -%}
        {%- if value is not string or not re.fullmatch('[0-9]{4}-[0-9]{2}-[0-9]{2}', value) -%}
            {%- set ns.problem = 'must be an ISO date (YYYY-MM-DD)'
                                 ~ (' or null (' ~ null_means ~ ')' if null_means is not none else '') -%}
        {%- elif value < lo or value > hi -%}
            {%- set ns.problem = 'must be from ' ~ lo ~ ' to ' ~ hi -%}
        {%- else -%}
            {%- set y, m, d = value.split('-') | map('int') | list -%}
            {%- if m < 1 or m > 12 or d < 1
                  or d > (modules.datetime.date(y + m // 12, m % 12 + 1, 1) - modules.datetime.timedelta(days=1)).day -%}
                {%- set ns.problem = 'is not a valid calendar date' -%}
            {%- endif -%}
        {%- endif -%}
        {#- a date var that may not be before another (max_invoice_date >= min_invoice_date) -#}
        {%- set floor = var(entry['at_least']) if entry.get('at_least') else none -%}
        {%- if floor is not none and floor is not string and floor.isoformat is defined -%}
            {%- set floor = floor.isoformat() -%}
        {%- endif -%}
        {%- if ns.problem is none and floor is string
              and re.fullmatch('[0-9]{4}-[0-9]{2}-[0-9]{2}', floor) and value < floor -%}
            {%- set ns.problem = 'must be at least ' ~ entry['at_least'] ~ ' (' ~ floor ~ ')' -%}
        {%- endif -%}

    {%- elif kind == 'integer' -%}
        {%- set other = entry.get('at_least') -%}
        {%- if value is boolean or value is not integer or value < lo or value > hi -%}
            {%- set ns.problem = ('must be null (' ~ null_means ~ ') or a' if null_means is not none else 'must be a')
                                 ~ ' whole number from ' ~ lo ~ ' to ' ~ hi -%}
        {%- elif other is not none and var(other) is integer and value < var(other) -%}
            {%- set ns.problem = 'must be at least ' ~ other ~ ' (' ~ var(other) ~ ')' -%}
        {%- endif -%}

    {%- elif kind == 'choices' -%}
        {%- if value is string or value is not iterable or value is mapping or value | length == 0 -%}
            {%- set ns.problem = 'must be a non-empty list of ' ~ item ~ 's, from ' ~ choices | join(', ') -%}
        {%- else -%}
            {%- for choice in value if ns.problem is none -%}
                {%- if choice is not string or choice not in choices -%}
                    {%- set ns.problem = 'entry ' ~ tojson(json_safe(choice)) ~ ' is not one of '
                                         ~ choices | join(', ') -%}
                {%- endif -%}
            {%- endfor -%}
            {%- if ns.problem is none and value | unique | list | length != value | length -%}
                {%- set ns.problem = 'must not repeat a ' ~ item -%}
            {%- endif -%}
        {%- endif -%}

    {%- else -%}
        {%- do exceptions.raise_compiler_error("validated_var: var '" ~ name ~ "' has unknown type '" ~ kind ~ "' in macros/var_spec.sql") -%}
    {%- endif -%}

    {%- if ns.problem is not none -%}
        {%- do exceptions.raise_compiler_error("Invalid value for dbt var '" ~ name ~ "': "
            ~ tojson(json_safe(value)) ~ " " ~ ns.problem ~ ".") -%}
    {%- endif -%}
    {{- return(value) -}}
{%- endmacro %}
