"""The bench's same-work reference (scripts/same_work_reference.sql + the package's segment
fitting) does the project's work: on the bundled sample and on a small file with one line per
rule, its tables equal the pipeline's marts row for row."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from conftest import PROJECT_DIR, SAMPLE_CSV, build_ok

sys.path.insert(0, str(PROJECT_DIR / "scripts"))
import bench  # noqa: E402
import bench_references  # noqa: E402

# The path to the segments, the command of issue 16's first target.
PATH_BUILD = bench.DBT_RUNS["path"]
HEADER = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
# One line per rule and edge case, then five customers with sales (k needs a few).
RULE_LINES = """\
536365,85123A,WHITE HANGING HEART,6,12/1/2010 8:26,2.55,17850.0,United Kingdom
536365,85123A,WHITE HANGING HEART,6,12/1/2010 8:26,2.55,17850.0,United Kingdom
536365,85123A,WHITE HANGING HEART,6,12/1/2010 8:26,2.55,17850.0,United Kingdom
536366,22633,HAND WARMER UNION JACK,6,12/1/2010 8:28,1.85,17850.0,United Kingdom
C536379,22633,HAND WARMER UNION JACK,-2,12/3/2010 9:41,1.85,17850.0,United Kingdom
C536380,22633,HAND WARMER UNION JACK,2,12/3/2010 9:41,1.85,17850.0,United Kingdom
536381,84029G,KNITTED HOT WATER BOTTLE,6,12/13/2010 9:00,3.39,,United Kingdom
536382,84029G,KNITTED HOT WATER BOTTLE,6,12/13/2010 9:00,0,13047.0,United Kingdom
536383,84029G,KNITTED HOT WATER BOTTLE,-6,12/13/2010 9:00,3.39,13047.0,United Kingdom
536384,84029G,KNITTED HOT WATER BOTTLE,0,12/13/2010 9:00,3.39,13047.0,United Kingdom
536385,POST,POSTAGE,1,12/13/2010 9:00,18.00,13047.0,France
536386,84029G,KNITTED HOT WATER BOTTLE,6,12/13/2010 9:00,3.39,13047.0,Unspecified
A563185,B,Adjust bad debt,1,8/12/2011 14:50,11062.06,,United Kingdom
536387,84029G,KNITTED HOT WATER BOTTLE,6,not a date,3.39,13047.0,United Kingdom
536388,84029G,KNITTED HOT WATER BOTTLE,1.5,12/13/2010 9:00,3.39,13047.0,United Kingdom
536389,84029G,KNITTED HOT WATER BOTTLE,6,12/13/2010 9:00,3.39,abc,United Kingdom
536390,,KNITTED HOT WATER BOTTLE,6,12/13/2010 9:00,3.39,13047.0,United Kingdom
536391,84029G,KNITTED HOT WATER BOTTLE,6,12/13/2010 9:00,three,13047.0,United Kingdom
536392,21730,GLASS STAR FROSTED T-LIGHT HOLDER,6,12/14/2010 10:00,4.25,13047.0,United Kingdom
536393,21730,GLASS STAR FROSTED T-LIGHT HOLDER,12,12/20/2010 10:00,4.25,12583.0,France
536393,22728,ALARM CLOCK BAKELIKE PINK,24,12/20/2010 10:00,3.75,12583.0,France
536394,22728,ALARM CLOCK BAKELIKE PINK,2,1/10/2011 11:00,3.75,12583.0,Germany
536395,22728,ALARM CLOCK BAKELIKE PINK,4,1/12/2011 12:00,3.75,12431.0,Australia
536396,21730,GLASS STAR FROSTED T-LIGHT HOLDER,48,2/1/2011 13:00,4.25,12431.0,Australia
536397,22633,HAND WARMER UNION JACK,100,2/2/2011 14:00,1.85,14911.0,EIRE
536398,22633,HAND WARMER UNION JACK,10,3/15/2011 15:00,1.85,14911.0,EIRE
536399,85123A,WHITE HANGING HEART,3,3/20/2011 16:00,2.55,15311.0,United Kingdom
"""


def same_work(path: Path, tmp_path: Path, source_file: str) -> tuple[dict, Path]:
    database = tmp_path / "same_work.duckdb"
    result = bench_references.reference_same_work(
        path, "2", "2GB", tmp_path / "tmp", database=database, source_file=source_file
    )
    return result, database


def assert_same_tables(pipeline: Path, reference: Path) -> None:
    """Each table of the reference equals the pipeline's mart (EXCEPT ALL both ways)."""
    differences = bench_references.same_work_differences(pipeline, reference)
    assert differences == {table: [0, 0] for table in bench_references.SAME_WORK_TABLES}


@pytest.fixture(scope="module")
def sample_reference(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("same_work_sample")
    return same_work(SAMPLE_CSV, tmp_path, "data/sample/online_retail_sample.csv")


def test_same_work_reference_gives_the_pipelines_numbers_on_the_sample(
    sample_build, sample_reference
):
    result, _ = sample_reference
    reasons = dict(
        sample_build.query(
            "select reject_reason, count(*) from marts.quarantined_transactions group by all"
        )
    )
    assert result["quarantine_reasons"] == reasons
    [(customers, recency, frequency, monetary, products)] = sample_build.query(
        "select count(*), sum(recency_days), sum(frequency), sum(monetary)::double, "
        "sum(distinct_products) from marts.customer_rfm"
    )
    assert (
        result["customers"],
        result["sum_recency"],
        result["sum_frequency"],
        result["sum_distinct_products"],
    ) == (customers, recency, frequency, products)
    assert result["sum_monetary"] == round(monetary, 2)
    segments = dict(
        sample_build.query("select rfm_segment, count(*) from marts.customer_rfm group by all")
    )
    assert result["rfm_segments"] == segments
    [(k,)] = sample_build.query("select k from marts.segment_model_selection where is_selected")
    sizes = [
        n
        for _, n in sample_build.query(
            "select segment_id, count(*) from marts.customer_segments group by all order by all"
        )
    ]
    assert (result["selected_k"], result["segment_sizes"]) == (k, sizes)


def test_same_work_reference_tables_equal_the_marts_row_for_row(sample_build, sample_reference):
    _, database = sample_reference
    assert_same_tables(sample_build.duckdb_path, database)


def test_same_work_reference_applies_every_rule_as_the_pipeline_does(tmp_path):
    data = tmp_path / "rules.csv"
    # a blank row and a row with one field too many, beside the lines above
    data.write_text(HEADER + RULE_LINES + ",,,,,,,\n" + RULE_LINES.splitlines()[3] + ",x\n")
    build = build_ok(tmp_path / "build", {"transactions_path": str(data)}, args=PATH_BUILD)
    result, database = same_work(data, tmp_path / "reference", str(data))
    reasons = dict(
        build.query(
            "select reject_reason, count(*) from marts.quarantined_transactions group by all"
        )
    )
    assert result["quarantine_reasons"] == reasons
    # every rule of the file above is met once at least
    assert {
        "duplicate_line",
        "stock_write_off",
        "cancellation_with_positive_quantity",
        "unit_price_at_or_below_minimum",
        "zero_quantity",
        "excluded_stock_code",
        "excluded_country",
        "adjustment",
        "invalid_invoice_date",
        "invalid_quantity",
        "invalid_customer_id",
        "invalid_unit_price",
        "missing_required_field",
        "blank_row",
        "too_many_fields",
    } <= set(reasons)
    assert_same_tables(build.duckdb_path, database)
