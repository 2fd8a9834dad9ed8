{#- A table written in groups of consecutive dates, one statement per group, so that a model
    whose memory grows with dates x rows (int_customer_rfm_snapshots: customers x snapshot
    dates) stays within DuckDB's memory limit at any input size. Config `date_groups`:
      dates: the model with one row per date (a ref of the model: it reads it),
      date_column: its date column, rows_column: the rows the model writes for that date,
      bytes_per_row: DuckDB memory one such row takes while the model computes it.
    A group gathers consecutive dates while their rows fit in a quarter of DuckDB's
    memory_limit (at least one date per group). Each group runs the model's SQL with the
    session variables date_group_first and date_group_last set to its first and last date
    (macro in_date_group filters on them) into the intermediate table, which replaces the
    target once every group is in, as dbt's table materialization does. Config
    `reuse_before` (optional): {files: the int_invoice_line_files model, date_column: the
    model's own date column, settings_macro: a macro whose text the model writes in its
    `settings` column} keeps
    the rows of the dates no change since the last build can reach (macro
    dates_unchanged_through) and computes the others. -#}
{% materialization table_in_date_groups, adapter='duckdb', supported_languages=['sql'] %}

  {%- set groups_config = config.require('date_groups') -%}
  {%- set existing_relation = load_cached_relation(this) -%}
  {%- set target_relation = this.incorporate(type='table') -%}
  {%- set intermediate_relation = make_intermediate_relation(target_relation) -%}
  {%- set preexisting_intermediate_relation = load_cached_relation(intermediate_relation) -%}
  {%- set backup_relation_type = 'table' if existing_relation is none else existing_relation.type -%}
  {%- set backup_relation = make_backup_relation(target_relation, backup_relation_type) -%}
  {%- set preexisting_backup_relation = load_cached_relation(backup_relation) -%}

  {{ drop_relation_if_exists(preexisting_intermediate_relation) }}
  {{ drop_relation_if_exists(preexisting_backup_relation) }}

  {{ run_hooks(pre_hooks, inside_transaction=False) }}
  {{ run_hooks(pre_hooks, inside_transaction=True) }}

  {#- With `reuse_before`, the rows of the dates a change cannot reach are kept from the
      table as the last build left it (docs/refresh.md): the dates up to the earliest line of
      an input file written or gone since that build, when the model's `settings` column is
      unchanged; the other dates are computed. -#}
  {%- set reused_through = none -%}
  {#- (guest_policy per_invoice numbers the guests over all invoices: a new invoice can
      renumber those of every date) -#}
  {%- if groups_config.get('reuse_before') and existing_relation is not none
        and not should_full_refresh() and validated_var('guest_policy') != 'per_invoice' -%}
    {%- set reused_through = dates_unchanged_through(
        existing_relation, groups_config['reuse_before']['date_column'],
        ref(groups_config['reuse_before']['files']), ref(groups_config['dates']),
        groups_config['date_column'], context[groups_config['reuse_before']['settings_macro']]()
    ) -%}
  {%- endif -%}
  {%- set groups = date_groups(
      ref(groups_config['dates']),
      groups_config['date_column'],
      groups_config['rows_column'],
      groups_config['bytes_per_row'],
      after=reused_through,
  ) -%}
  {%- if reused_through is not none %}
    {% call statement('reused_rows') -%}
      {{ create_table_as(False, intermediate_relation,
          'select * from ' ~ existing_relation ~ ' where '
          ~ groups_config['reuse_before']['date_column'] ~ ' <= ' ~ reused_through
          ~ ' and ' ~ groups_config['reuse_before']['date_column'] ~ ' in (select '
          ~ groups_config['date_column'] ~ ' from ' ~ ref(groups_config['dates']) ~ ')') }}
    {%- endcall %}
  {%- endif %}
  {#- no dates (no sale line at all): one statement over every date, which writes no row -#}
  {%- for group in (groups or ([] if reused_through is not none else [none])) %}
    {%- if group is not none %}
      {% call statement('date_group_' ~ loop.index) -%}
        set variable date_group_first = date '{{ group[0] }}';
        set variable date_group_last = date '{{ group[1] }}';
      {%- endcall %}
    {%- endif %}
    {% call statement('main' if loop.last else 'date_group_' ~ loop.index ~ '_rows') -%}
      {%- if loop.first and reused_through is none %}
        {{ create_table_as(False, intermediate_relation, sql) }}
      {%- else %}
        insert into {{ intermediate_relation }} {{ sql }}
      {%- endif %}
    {%- endcall %}
  {%- endfor %}
  {%- if reused_through is not none and not groups %}
    {% call statement('main') -%}
      select 1
    {%- endcall %}
  {%- endif %}
  {% call statement('date_groups_done') -%}
    reset variable date_group_first;
    reset variable date_group_last;
  {%- endcall %}

  {% if existing_relation is not none %}
    {{ adapter.rename_relation(existing_relation, backup_relation) }}
  {% endif %}
  {{ adapter.rename_relation(intermediate_relation, target_relation) }}

  {{ run_hooks(post_hooks, inside_transaction=True) }}
  {% do persist_docs(target_relation, model) %}
  {{ adapter.commit() }}
  {{ drop_relation_if_exists(backup_relation) }}
  {{ run_hooks(post_hooks, inside_transaction=False) }}

  {{ return({'relations': [target_relation]}) }}
{% endmaterialization %}
