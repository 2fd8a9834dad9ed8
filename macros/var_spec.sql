{#- The one spec of the project's dbt vars: name, default, type, allowed values and meaning.
    `validated_var` checks every var against it before any model runs; the package reads the
    same YAML (customer_segmentation/var_spec.py) for its constants and checks, and generates
    docs/vars.md from it. dbt needs each default in dbt_project.yml `vars:` too; a pytest holds
    it to this one. Plain YAML only: no Jinja inside the block.

    Types and their keys: path (suffixes), enum (choices), codes (a list of strings matching
    `pattern`; item, example, pattern_help), number (a finite number within `range`), boolean,
    date (ISO date within `range`), integer (whole number within `range`); for dates and
    integers `at_least` names a var it may not be below, choices (a non-empty list of `choices` without repeats; item).
    `null_means` allows null and says what it stands for. -#}
{% macro var_spec() -%}
{%- set spec -%}
transactions_path:
  default: data/sample/online_retail_sample.csv
  type: path
  suffixes: [.csv, .csv.gz, .parquet, .xlsx]
  help: The raw invoice lines, relative to the project folder (README "Your own data").

invoice_date_format:
  default: auto
  type: enum
  choices: [auto, month_first, day_first, iso]
  help: >-
    How dates like 01/12/2010 are read: auto (per file, from its values), month_first,
    day_first, or iso (only ISO timestamps).

min_invoice_date:
  default: "1990-01-01"
  type: date
  range: ["1900-01-01", "2999-12-31"]
  help: >-
    Lines invoiced before this day are quarantined as invoice_date_out_of_range (a date
    mistyped or a year read wrong).

max_invoice_date:
  default: null
  type: date
  range: ["1900-01-01", "2999-12-31"]
  at_least: min_invoice_date
  null_means: the day after the day the build runs (UTC)
  help: >-
    Lines invoiced after this day are quarantined as invoice_date_out_of_range (a line in the
    future would make every recency and forecast wrong).

exclude_stock_codes:
  default: ["POST", "DOT", "M", "m", "D", "S", "C2", "BANK CHARGES", "AMAZONFEE", "CRUK",
            "PADS", "B", "DCGSSBOY", "DCGSSGIRL", "DCGS*", "gift_0001_*"]
  type: codes
  item: stock code
  example: '["POST", "DCGS*"]'
  pattern: "[A-Za-z0-9 _./*-]{1,50}"
  pattern_help: letters, digits, space, _ . / - and * as wildcard; at most 50 characters
  help: >-
    Non-product stock codes whose lines are rejected (`*` matches any characters; matching
    is case-sensitive).

excluded_countries:
  default: ["Unspecified", "European Community"]
  type: codes
  item: country name
  example: '["Unspecified"]'
  pattern: "[A-Za-z0-9 .,'()&-]{1,80}"
  pattern_help: "letters, digits, space and . , ' ( ) & -; at most 80 characters"
  help: Countries whose lines are rejected (they are not a place).

min_unit_price:
  default: 0
  type: number
  range: [-1000000000, 1000000000]
  help: Lines with a unit price at or below it are rejected.

round_unit_prices:
  default: false
  type: boolean
  help: >-
    Round prices with a digit beyond the fourth decimal place (a price computed from an
    amount, such as 9.776666666666667) to four places, instead of quarantining their lines as
    unit_price_too_precise.

drop_exact_duplicates:
  default: true
  type: boolean
  help: Reject exact duplicate lines (all eight fields) after the first, in file order.

guest_policy:
  default: exclude
  type: enum
  choices: [exclude, per_invoice]
  help: >-
    Lines without a customer id: exclude (kept for revenue, not customers) or per_invoice
    (each guest invoice is a customer of its own, with a negative id).

forget_customers_path:
  default: null
  type: path
  suffixes: [.csv]
  null_means: nothing is forgotten
  help: >-
    A CSV with a column customer_id: the customers whose lines no table holds (docs/privacy.md,
    "Forgetting a customer"). Relative to the project folder.

as_of_date:
  default: null
  type: date
  range: ["1900-01-01", "2999-12-31"]
  null_means: the day after the last transaction
  help: Reference date of the RFM; only lines invoiced before it count.

rfm_score_buckets:
  default: 5
  type: integer
  range: [2, 10]
  help: R, F and M scores run 1..N.

segment_k_min:
  default: 2
  type: integer
  range: [2, 20]
  help: Smallest number of segments k tried by the segment model selection.

segment_k_max:
  default: 10
  type: integer
  range: [2, 20]
  at_least: segment_k_min
  help: Largest number of segments k tried by the segment model selection.

segment_k:
  default: null
  type: integer
  range: [2, 20]
  null_means: chosen by the selection rule
  help: Fixes the number of segments.

segment_features:
  default: ["recency_days", "frequency", "monetary"]
  type: choices
  item: customer_rfm column
  choices: [recency_days, frequency, monetary, gross_revenue, returned_amount, avg_order_value,
            total_items, distinct_products, return_lines, tenure_days]
  help: The customer_rfm columns the KMeans segmentation uses, in this order.

top_products_n:
  default: 10
  type: integer
  range: [1, 100]
  help: >-
    Products listed per segment in segment_top_products and in new_customer_starter_products.

affinity_min_orders:
  default: 10
  type: integer
  range: [1, 1000000]
  help: >-
    Orders two products must share to be listed in product_affinity (products in fewer
    orders are not paired at all).

affinity_max_related:
  default: 10
  type: integer
  range: [1, 100]
  help: Related products listed per product in product_affinity, by lift.

recommendation_holdout_days:
  default: 90
  type: integer
  range: [1, 3650]
  help: >-
    Days before as_of_date held out to test the recommendation methods in
    recommendation_evaluation: trained on the lines before as_of_date minus these days, tested
    on the new products customers bought in the days after.

recommendations_n:
  default: 10
  type: integer
  range: [1, 100]
  help: >-
    Products recommended per customer in customer_recommendations, and the k of the
    precision, recall, hit rate and NDCG at k in recommendation_evaluation.

backtest_horizon_days:
  default: 90
  type: integer
  range: [1, 3650]
  help: >-
    Days of the horizon of segment_backtest: the segmentation is refitted on the lines before
    as_of_date minus these days, and each segment's buying is measured in the days after.

clv_horizon_days:
  default: 90
  type: integer
  range: [1, 3650]
  help: >-
    Days ahead the lifetime-value models predict purchases and revenue for
    (customer_lifetime_value, segment_forecast), and the holdout of clv_validation: refitted
    on the lines before as_of_date minus these days, scored on the days after.

clv_lifetime_months:
  default: 12
  type: integer
  range: [1, 120]
  help: Months of future purchases summed into the clv of customer_lifetime_value.

clv_annual_discount_rate:
  default: 0.10
  type: number
  range: [0, 1]
  help: >-
    Yearly rate the clv is discounted at, applied monthly as (1 + rate)^(1/12) - 1.
{%- endset -%}
    {%- set parsed = fromyaml(spec) -%}
    {%- if parsed is not mapping -%}
        {%- do exceptions.raise_compiler_error('var_spec: macros/var_spec.sql does not hold valid YAML') -%}
    {%- endif -%}
    {{- return(parsed) -}}
{%- endmacro %}
