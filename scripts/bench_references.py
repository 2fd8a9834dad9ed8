"""The references scripts/bench.py runs beside the dbt builds, each in a child process: the
pandas notebook, the bare DuckDB query (one RFM query + one KMeans fit) and the same-work
DuckDB reference (scripts/same_work_reference.sql + the package's own segment fitting).

Each returns a JSON-able dict: its phases' seconds (`import` and `total_in_process` included)
and the figures that show it did its job (customers, sums, cluster sizes).
"""

from __future__ import annotations

import re
import time
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[1]
SAME_WORK_SQL = Path(__file__).resolve().with_name("same_work_reference.sql")
SEGMENT_RULES_CSV = PROJECT_DIR / "seeds" / "rfm_segment_rules.csv"
SEGMENT_PERSONAS_CSV = PROJECT_DIR / "seeds" / "segment_personas.csv"
KMEANS = {"n_clusters": 4, "n_init": 10, "random_state": 42}
# The input columns, as the UCI export (and the project's generator) names them.
UCI_COLUMNS = {
    "invoice_no": "InvoiceNo",
    "stock_code": "StockCode",
    "description": "Description",
    "quantity": "Quantity",
    "invoice_date": "InvoiceDate",
    "unit_price": "UnitPrice",
    "customer_id": "CustomerID",
    "country": "Country",
}


def _input_format(path: Path) -> str:
    return "parquet" if path.suffix == ".parquet" else "csv"


def _kmeans_summary(features, started: float, phases: dict) -> dict:
    """log1p + StandardScaler + one KMeans fit on (recency, frequency, monetary)."""
    import numpy as np
    from sklearn.cluster import KMeans
    from sklearn.preprocessing import StandardScaler  # imported by the caller: no cost here

    t = time.perf_counter()
    x = StandardScaler().fit_transform(np.log1p(np.asarray(features, dtype=np.float64)))
    km = KMeans(**KMEANS).fit(x)
    phases["kmeans"] = round(time.perf_counter() - t, 3)
    phases["total_in_process"] = round(time.perf_counter() - started, 3)
    sizes = np.bincount(km.labels_, minlength=KMEANS["n_clusters"])
    totals = np.asarray(features, dtype=np.float64).sum(axis=0)
    return {
        "phases_seconds": phases,
        "customers": int(x.shape[0]),
        "sum_recency": int(totals[0]),
        "sum_frequency": int(totals[1]),
        "sum_monetary": round(float(totals[2]), 2),
        "kmeans_inertia": float(km.inertia_),
        "cluster_sizes": sorted(int(s) for s in sizes),
    }


def reference_pandas(path: Path) -> dict:
    """The notebook approach, as published analyses of this data write it."""
    started = time.perf_counter()
    import pandas as pd
    import sklearn.cluster  # noqa: F401  (timed with the imports, not with the fit)

    phases: dict[str, float] = {"import": round(time.perf_counter() - started, 3)}
    t = time.perf_counter()
    if _input_format(path) == "parquet":
        df = pd.read_parquet(path)
    else:
        text_columns = ("InvoiceNo", "StockCode", "Description", "Country")
        df = pd.read_csv(path, encoding="ISO-8859-1", dtype=dict.fromkeys(text_columns, str))
        df["InvoiceDate"] = pd.to_datetime(df["InvoiceDate"], format="%m/%d/%Y %H:%M")
    rows_read = len(df)
    phases["read"] = round(time.perf_counter() - t, 3)

    t = time.perf_counter()
    df = df.dropna(subset=["CustomerID"])
    df = df[(df["Quantity"] > 0) & (df["UnitPrice"] > 0)].copy()
    df["TotalPrice"] = df["Quantity"] * df["UnitPrice"]
    reference_date = df["InvoiceDate"].max() + pd.Timedelta(days=1)
    phases["clean"] = round(time.perf_counter() - t, 3)

    t = time.perf_counter()
    rfm = df.groupby("CustomerID").agg(
        {
            "InvoiceDate": lambda x: (reference_date - x.max()).days,
            "InvoiceNo": lambda x: x.nunique(),
            "TotalPrice": lambda x: x.sum(),
        }
    )
    rfm.columns = ["Recency", "Frequency", "Monetary"]
    phases["rfm"] = round(time.perf_counter() - t, 3)

    t = time.perf_counter()
    rfm["R"] = pd.qcut(rfm["Recency"].rank(method="first"), 5, labels=[5, 4, 3, 2, 1])
    rfm["F"] = pd.qcut(rfm["Frequency"].rank(method="first"), 5, labels=[1, 2, 3, 4, 5])
    rfm["M"] = pd.qcut(rfm["Monetary"].rank(method="first"), 5, labels=[1, 2, 3, 4, 5])
    rfm["RFM_Score"] = rfm["R"].astype(str) + rfm["F"].astype(str) + rfm["M"].astype(str)
    phases["scores"] = round(time.perf_counter() - t, 3)

    summary = _kmeans_summary(rfm[["Recency", "Frequency", "Monetary"]], started, phases)
    return {"rows_read": rows_read, "rows_clean": len(df), **summary}


def reference_duckdb(path: Path, threads: str, memory_limit: str, temp_dir: Path) -> dict:
    """One DuckDB RFM query (one scan of the file) with the pandas reference's cleaning."""
    started = time.perf_counter()
    import duckdb
    import numpy as np
    import sklearn.cluster  # noqa: F401  (timed with the imports, not with the fit)

    phases: dict[str, float] = {"import": round(time.perf_counter() - started, 3)}
    if _input_format(path) == "parquet":
        source = "read_parquet($path)"
    else:
        columns = (
            "{'InvoiceNo': 'VARCHAR', 'StockCode': 'VARCHAR', 'Description': 'VARCHAR', "
            "'Quantity': 'BIGINT', 'InvoiceDate': 'TIMESTAMP', 'UnitPrice': 'DOUBLE', "
            "'CustomerID': 'DOUBLE', 'Country': 'VARCHAR'}"
        )
        source = (
            f"read_csv($path, header = true, auto_detect = false, columns = {columns}, "
            "encoding = 'latin-1', timestampformat = '%m/%d/%Y %H:%M')"
        )
    # Recency as pandas computes it: whole days from the last purchase to the reference date
    # (the day after the last clean line), i.e. the max over customers of their last purchase.
    query = f"""
        with per_customer as (
            select
                CustomerID as customer_id,
                max(InvoiceDate) as last_purchase,
                count(distinct InvoiceNo) as frequency,
                sum(Quantity * UnitPrice) as monetary
            from {source}
            where CustomerID is not null and Quantity > 0 and UnitPrice > 0
            group by CustomerID
        )
        select
            date_diff(
                'second', last_purchase, max(last_purchase) over () + interval 1 day
            ) // 86400 as recency,
            frequency,
            monetary
        from per_customer
        order by customer_id
    """
    temp_dir.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(
        config={
            "threads": int(threads),
            "memory_limit": memory_limit,
            "temp_directory": str(temp_dir),
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
        }
    )
    t = time.perf_counter()
    columns = con.execute(query, {"path": str(path)}).fetchnumpy()
    phases["rfm_query"] = round(time.perf_counter() - t, 3)
    con.close()

    features = np.column_stack([columns["recency"], columns["frequency"], columns["monetary"]])
    return _kmeans_summary(features, started, phases)


# --------------------------------------------------------------------------- same work


def sql_literal(text: str) -> str:
    """A SQL string literal: single quotes doubled (macros/sql_string_literal.sql's rule)."""
    return "'" + str(text).replace("'", "''") + "'"


def _read_path(path: Path) -> str:
    """The path as DuckDB's readers take it: an existing file, its glob characters escaped
    (macros/read_invoice_line_files.sql's rule), as a literal."""
    resolved = Path(path).resolve()
    if not resolved.is_file():
        raise FileNotFoundError(f"no input file {resolved}")
    escaped = str(resolved).replace("[", "[[]").replace("*", "[*]").replace("?", "[?]")
    return sql_literal(escaped)


def raw_lines_sql(path: Path, source_file: str) -> str:
    """The view `raw_lines`: stg_raw_invoice_lines for one bench input (the UCI column names;
    a CSV in latin-1 with a header, as the generator writes it), every field as text."""
    if _input_format(path) == "parquet":
        fields = ",\n    ".join(
            f'cast("{column}" as varchar) as {name}' for name, column in UCI_COLUMNS.items()
        )
        return (
            f"create temp view raw_lines as\nselect\n    {sql_literal(source_file)} as "
            f"source_file,\n    file_row_number + 1 as source_row,\n    false as "
            f"has_extra_fields,\n    {fields}\nfrom read_parquet({_read_path(path)}, "
            "file_row_number = true)"
        )
    with open(path, encoding="latin-1") as fh:
        header = [h.strip().strip('"') for h in fh.readline().rstrip("\r\n").split(",")]
    if header != list(UCI_COLUMNS.values()):
        raise ValueError(f"{path}: header {header}, expected {list(UCI_COLUMNS.values())}")
    columns = ", ".join(f"'c{i}': 'VARCHAR'" for i in range(len(header)))
    fields = ",\n    ".join(f"c{i} as {name}" for i, name in enumerate(UCI_COLUMNS))
    return (
        f"create temp view raw_lines as\nselect\n    {sql_literal(source_file)} as source_file,"
        f"\n    row_number() over () as source_row,\n    extra_fields is not null as "
        f"has_extra_fields,\n    {fields}\nfrom read_csv({_read_path(path)}, header = true, "
        f"auto_detect = false, columns = {{{columns}, 'extra_fields': 'VARCHAR'}}, "
        "delim = ',', quote = '\"', escape = '\"', encoding = 'latin-1', null_padding = true, "
        "strict_mode = false, parallel = false)"
    )


def _excluded_stock_code_condition(codes: list[str]) -> str:
    """int_invoice_lines_rule_checked's condition: exact codes in one IN list, `*` a wildcard."""
    exact = [sql_literal(c) for c in codes if "*" not in c]
    conditions = [f"stock_code in ({', '.join(exact)})"] if exact else []
    for code in (c for c in codes if "*" in c):
        pattern = code.replace("_", "\\_").replace("%", "\\%").replace("*", "%")
        conditions.append(f"stock_code like {sql_literal(pattern)} escape '\\'")
    return "(" + " or ".join(conditions) + ")" if conditions else "false"


def same_work_steps() -> list[tuple[str, str]]:
    """(step name, SQL) of scripts/same_work_reference.sql, the `@name@` values filled in from
    the project's default vars: each a quoted literal, a number or a boolean from the spec."""
    from customer_segmentation import var_spec

    for name, value in (
        ("guest_policy", "exclude"),
        ("as_of_date", None),
        ("max_invoice_date", None),
    ):
        if var_spec.default(name) != value:  # the SQL is written for these two
            raise ValueError(f"same-work reference: written for {name} = {value!r}")
    buckets = int(var_spec.default("rfm_score_buckets"))
    countries = [sql_literal(c) for c in var_spec.default("excluded_countries")]
    values = {
        "excluded_stock_code": _excluded_stock_code_condition(
            list(var_spec.default("exclude_stock_codes"))
        ),
        "excluded_country": f"country in ({', '.join(countries)})" if countries else "false",
        "min_unit_price": repr(float(var_spec.default("min_unit_price"))),
        "min_invoice_date": sql_literal(var_spec.default("min_invoice_date")),
        "drop_exact_duplicates": "true" if var_spec.default("drop_exact_duplicates") else "false",
        "buckets": str(buckets),
        "cell_separator": sql_literal("-" if buckets > 9 else ""),
        "segment_rules_csv": sql_literal(str(SEGMENT_RULES_CSV)),
    }
    text = re.sub(r"@(\w+)@", lambda m: values[m.group(1)], SAME_WORK_SQL.read_text())
    steps = []
    for chunk in re.split(r"^-- step: ", text, flags=re.MULTILINE)[1:]:
        name, _, body = chunk.partition("\n")
        steps.append((name.strip(), body.strip()))
    return steps


def reference_same_work(
    path: Path,
    threads: str,
    memory_limit: str,
    temp_dir: Path,
    database: Path | None = None,
    source_file: str | None = None,
) -> dict:
    """The same work as the project's path to the segments, in one DuckDB connection:
    scripts/same_work_reference.sql (tables duplicate_lines, quarantined_transactions,
    customer_rfm in `database`), then the package's model selection and segment fit
    (`select_segment_count`, `fit_customer_segments`, as segment_model_selection and
    customer_segments call them), both written back as tables."""
    started = time.perf_counter()
    import duckdb
    import pyarrow.csv as pa_csv

    from customer_segmentation.segmentation.segments import (
        SEGMENT_COLUMNS,
        fit_customer_segments,
    )
    from customer_segmentation.segmentation.selection import select_segment_count
    from customer_segmentation.segmentation.settings import validate_settings
    from customer_segmentation.segmentation.tables import rfm_columns

    phases: dict[str, float] = {"import": round(time.perf_counter() - started, 3)}
    temp_dir.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(
        str(database) if database else ":memory:",
        config={
            "threads": int(threads),
            "memory_limit": memory_limit,
            "temp_directory": str(temp_dir),
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
        },
    )
    con.execute(raw_lines_sql(Path(path), source_file or str(path)))
    for name, sql in same_work_steps():
        t = time.perf_counter()
        con.execute(sql)
        phases[name] = round(time.perf_counter() - t, 3)

    t = time.perf_counter()
    settings = validate_settings()
    columns = rfm_columns(settings.features, SEGMENT_COLUMNS)
    rfm = con.sql(f"select {', '.join(columns)} from customer_rfm").to_arrow_table()
    selection = select_segment_count(rfm, settings)
    phases["segment_model_selection"] = round(time.perf_counter() - t, 3)
    t = time.perf_counter()
    segments = fit_customer_segments(rfm, selection, pa_csv.read_csv(SEGMENT_PERSONAS_CSV))
    phases["customer_segments"] = round(time.perf_counter() - t, 3)
    t = time.perf_counter()
    con.register("selection_arrow", selection)
    con.register("segments_arrow", segments)
    con.execute("create table segment_model_selection as select * from selection_arrow")
    con.execute("create table customer_segments as select * from segments_arrow")
    con.execute("checkpoint")
    phases["write_segments"] = round(time.perf_counter() - t, 3)
    phases["total_in_process"] = round(time.perf_counter() - started, 3)

    figures = con.execute(
        "select count(*), sum(recency_days), sum(frequency), sum(monetary)::double, "
        "sum(distinct_products) from customer_rfm"
    ).fetchone()
    reasons = dict(
        con.execute(
            "select reject_reason, count(*) from quarantined_transactions group by all order by all"
        ).fetchall()
    )
    rfm_segments = dict(
        con.execute(
            "select rfm_segment, count(*) from customer_rfm group by all order by all"
        ).fetchall()
    )
    sizes = con.execute(
        "select segment_id, count(*) from customer_segments group by all order by all"
    ).fetchall()
    k = con.execute("select k from segment_model_selection where is_selected").fetchone()[0]
    date_format = con.execute("select getvariable('invoice_date_format')").fetchone()[0]
    con.close()
    return {
        "phases_seconds": phases,
        "invoice_date_format": date_format,
        "customers": int(figures[0]),
        "sum_recency": int(figures[1]),
        "sum_frequency": int(figures[2]),
        "sum_monetary": round(float(figures[3]), 2),
        "sum_distinct_products": int(figures[4]),
        "quarantine_reasons": reasons,
        "rfm_segments": rfm_segments,
        "selected_k": int(k),
        "segment_sizes": [int(n) for _, n in sizes],
    }


# The reference's tables and the marts they must equal (quarantined_transactions without
# source_file: the pipeline keeps the path as given in transactions_path).
SAME_WORK_TABLES = {
    "quarantined_transactions": "invoice_no, stock_code, description, quantity, unit_price, "
    "invoiced_at, customer_id, country, reject_reason, source_row",
    "customer_rfm": "*",
    "customer_segments": "*",
    "segment_model_selection": "*",
}


def same_work_differences(pipeline: Path, reference: Path) -> dict[str, list[int]]:
    """Per table: [rows only in the pipeline's mart, rows only in the reference's table]
    (EXCEPT ALL both ways); all zeros when the reference did the pipeline's work."""
    import duckdb

    con = duckdb.connect()
    con.execute(f"attach {sql_literal(str(pipeline))} as p (read_only)")
    con.execute(f"attach {sql_literal(str(reference))} as r (read_only)")
    found = {}
    for table, columns in SAME_WORK_TABLES.items():
        ours = f"select {columns} from p.marts.{table}"
        theirs = f"select {columns} from r.main.{table}"
        found[table] = [
            con.execute(f"select count(*) from ({a} except all {b})").fetchone()[0]
            for a, b in ((ours, theirs), (theirs, ours))
        ]
    con.close()
    return found


# --------------------------------------------------------------------------- input shape


SHAPE_SQL = """
select
    count(*) as lines,
    count(distinct CustomerID) as customers,
    count(distinct StockCode) as stock_codes,
    count(distinct InvoiceNo) as invoices,
    count(distinct InvoiceNo) filter (where CustomerID is not null) as customer_invoices
from {source}
"""


def input_shape(path: Path) -> dict:
    """Lines, customers, stock codes and invoices of an input (one DuckDB query; the CSV as
    typed by DuckDB's sniffer), and the two ratios: lines per invoice, invoices per customer
    (invoices with a customer id over customers)."""
    import duckdb

    source = (
        f"read_parquet({_read_path(path)})"
        if _input_format(path) == "parquet"
        else f"read_csv({_read_path(path)}, encoding = 'latin-1')"
    )
    con = duckdb.connect(config={"threads": 2, "memory_limit": "2GB"})
    row = con.execute(SHAPE_SQL.format(source=source)).fetchone()
    con.close()
    lines, customers, stock_codes, invoices, customer_invoices = (int(v) for v in row)
    return {
        "lines": lines,
        "customers": customers,
        "stock_codes": stock_codes,
        "invoices": invoices,
        "customer_invoices": customer_invoices,
        "lines_per_invoice": round(lines / invoices, 2) if invoices else None,
        "invoices_per_customer": round(customer_invoices / customers, 2) if customers else None,
    }
