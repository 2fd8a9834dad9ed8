"""Product recommendations per customer, and the honest test that picks the method.

recommendation_evaluation trains every method on the lines before a split date and tests it on
the products each customer bought for the first time in the holdout window after it;
customer_recommendations refits the selected method on all lines before as_of_date. The split
is set in one place (`holdout_split`); the relational work (filters, distinct pairs, the RFM of
the training period) runs in DuckDB on the dbt relations; Python holds the sparse customer x
product matrix and the models. Method and measurements: docs/recommendations.md.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from functools import partial
from itertools import pairwise

import numpy as np
import pyarrow as pa
import scipy.sparse as sp

from customer_segmentation import var_spec
from customer_segmentation.memory import (
    BATCH_ROWS,
    CUSTOMERS_PER_CHUNK,
    EVALUATION_CHUNK_WORKERS,
    ROWS_PER_PART,
)
from customer_segmentation.recommenders import (
    METHODS,
    Interactions,
    Metrics,
    ranking_metrics,
    scorer,
    tie_order,
    top_n,
)
from customer_segmentation.segmentation.asof import (
    check_features,
    lines_before,
    reference_date,
    refit_segments,
    rfm_before,
)
from customer_segmentation.segmentation.features import sample_positions
from customer_segmentation.segmentation.settings import SegmentSettings
from customer_segmentation.segmentation.threads import (
    side_by_side,
)

SELECTION_RULE = (
    "highest recall_at_k; a tie goes to the first of global_popularity, segment_popularity, "
    "item_item, als"
)
# The evaluation trains and tests on all customers up to this many, else on a deterministic
# sample of them (segmentation.features.sample_positions): its memory and time stay bounded
# (about 16 million customer x product cells) whatever the size of the input.
EVALUATION_CUSTOMERS = 200_000
# Of the customers the evaluation tests (a sale before the split and a new product after it),
# at most this many are scored, the same kind of deterministic sample (a subset of the one
# above). Training still uses every customer of that sample; only the ranking of each tested
# customer's products, the costly part (a customers x products block per method), is bounded.
# At 10,000 customers the standard error of a mean recall at 10 near 0.02 is about 0.0006,
# of a hit rate near 0.5 about 0.005; every method is scored on the same customers.
SCORED_CUSTOMERS = 10_000

EVALUATION_SCHEMA = pa.schema(
    [
        ("method", pa.string()),
        ("k", pa.int32()),
        ("customers_evaluated", pa.int64()),
        ("precision_at_k", pa.float64()),
        ("recall_at_k", pa.float64()),
        ("hit_rate_at_k", pa.float64()),
        ("ndcg_at_k", pa.float64()),
        ("catalog_coverage", pa.float64()),
        ("train_end_date", pa.date32()),
        ("test_start_date", pa.date32()),
        ("test_end_date", pa.date32()),
        ("as_of_date", pa.date32()),
        ("is_selected", pa.bool_()),
        ("selection_rule", pa.string()),
    ]
)


@dataclass(frozen=True)
class Split:
    """The holdout split: train on lines before test_start_date, test on [test_start_date,
    as_of_date)."""

    as_of_date: date
    train_end_date: date  # the last day of training: test_start_date - 1 day
    test_start_date: date  # the split: a line at 00:00:00 of this day is a test line
    test_end_date: date  # the last day of the test: as_of_date - 1 day


def holdout_split(as_of_date: date, holdout_days: object) -> Split:
    """THE split of the evaluation: `holdout_days` days before as_of_date (the only place)."""
    var_spec.check("recommendation_holdout_days", holdout_days, {})
    split = as_of_date - timedelta(days=int(holdout_days))  # type: ignore[call-overload]
    return Split(as_of_date, split - timedelta(days=1), split, as_of_date - timedelta(days=1))


def checked_n(recommendations_n: object) -> int:
    """The var recommendations_n, checked again in Python."""
    var_spec.check("recommendations_n", recommendations_n, {})
    return int(recommendations_n)  # type: ignore[call-overload]


def customer_order_products(order_products):
    """Sale order products of identified customers: guest orders never count."""
    return order_products.filter("customer_id is not null and not is_guest")


def purchase_pairs(order_products, before: date):
    """One row per customer and product bought before `before`: orders holding it."""
    return lines_before(customer_order_products(order_products), before).aggregate(
        "customer_id, stock_code, count(*) as orders", "customer_id, stock_code"
    )


def new_purchase_pairs(order_products, split: Split):
    """The test: products bought in [split, as_of_date) by customers who bought before the
    split, minus the products each had bought before it."""
    start, end = split.test_start_date.isoformat(), split.as_of_date.isoformat()
    lines = customer_order_products(order_products)
    test = (
        lines.filter(f"invoiced_at >= date '{start}' and invoiced_at < date '{end}'")
        .aggregate("customer_id, stock_code", "customer_id, stock_code")
        .set_alias("test")
    )
    trained = purchase_pairs(order_products, split.test_start_date)
    customers = trained.aggregate("customer_id", "customer_id").set_alias("trained_customers")
    known = trained.select("customer_id, stock_code").set_alias("trained_pairs")
    return (
        test.join(customers, "customer_id", how="semi")
        .set_alias("test_of_trained")
        .join(known, "customer_id, stock_code", how="anti")
    )


def customer_ranges(lines) -> tuple[list[str], int]:
    """Filters on customer_id that split `lines` into ascending ranges of customers holding
    about ROWS_PER_PART rows each (one filter taking every row when they are fewer), and the
    number of rows."""
    per_customer = (
        lines.aggregate("customer_id, count(*) as n", "customer_id")
        .order("customer_id")
        .fetchnumpy()
    )
    ids = np.asarray(per_customer["customer_id"], dtype=np.int64)
    held = np.cumsum(np.asarray(per_customer["n"], dtype=np.int64))
    if len(ids) == 0 or held[-1] <= ROWS_PER_PART:
        return ["true"], int(held[-1]) if len(ids) else 0
    # a range starts at the first customer past each multiple of ROWS_PER_PART rows
    starts = np.searchsorted(held, np.arange(ROWS_PER_PART, held[-1], ROWS_PER_PART), "right")
    edges = [int(ids[0]), *(int(ids[i]) for i in np.unique(starts) if 0 < i < len(ids))]
    edges.append(int(ids[-1]) + 1)
    ranges = [f"customer_id >= {low} and customer_id < {high}" for low, high in pairwise(edges)]
    return ranges, int(held[-1])


def interactions(session, order_products, before: date) -> Interactions:
    """The training matrix of the sale order products before `before`: customers and products
    numbered in ascending order, built from streams sorted in DuckDB (no coordinate copy), one
    per range of customers (`customer_ranges`)."""
    lines = lines_before(customer_order_products(order_products), before)
    codes = lines.aggregate("stock_code", "stock_code").order("stock_code").to_arrow_table()
    stock_codes = codes.column("stock_code").combine_chunks().cast(pa.string())
    index = session.from_arrow(
        pa.table(
            {
                "stock_code": stock_codes,
                "product_index": pa.array(np.arange(len(stock_codes), dtype=np.int32)),
            }
        )
    )
    ranges, rows = customer_ranges(lines)
    # Every cell counts at least one row, so `rows` bounds the cells: the arrays are filled in
    # place as the batches come, with no list of batches and no concatenated copy (at 100M
    # lines that copy was the build's peak). np.empty leaves the pages past the last cell
    # untouched, so they never take memory.
    indices = np.empty(rows, dtype=np.int32)
    data = np.empty(rows, dtype=np.int32)
    filled = 0
    ids, counts = [], []
    for customers in ranges:
        cells = (
            lines.filter(customers)
            .join(index.set_alias("codes"), "stock_code")
            .aggregate(
                "customer_id, product_index, cast(count(*) as integer) as orders",
                "customer_id, product_index",
            )
            .order("customer_id, product_index")
        )
        for batch in cells.to_arrow_reader(BATCH_ROWS):
            if batch.num_rows == 0:
                continue
            customer = batch.column("customer_id").to_numpy()
            starts = np.flatnonzero(np.r_[True, customer[1:] != customer[:-1]])
            ids.append(customer[starts])
            counts.append(np.diff(np.r_[starts, len(customer)]))
            end = filled + batch.num_rows
            indices[filled:end] = batch.column("product_index").to_numpy()
            data[filled:end] = batch.column("orders").to_numpy()
            filled = end
    indices, data = indices[:filled], data[:filled]
    customer_ids = np.concatenate(ids) if ids else np.zeros(0, np.int64)
    per_customer = np.concatenate(counts) if counts else np.zeros(0, np.int64)
    # a customer whose rows straddle two batches appears twice in a row: merge the runs
    if len(customer_ids):
        first = np.flatnonzero(np.r_[True, customer_ids[1:] != customer_ids[:-1]])
        per_customer = np.add.reduceat(per_customer, first)
        customer_ids = customer_ids[first].astype(np.int64)
    indptr = np.r_[0, np.cumsum(per_customer)].astype(np.int64 if len(data) >= 2**31 else np.int32)
    matrix = sp.csr_matrix((data, indices, indptr), shape=(len(customer_ids), len(stock_codes)))
    return Interactions(customer_ids, stock_codes, matrix)


def product_matrix(
    pairs, customer_ids: np.ndarray, stock_codes: pa.Array, session
) -> sp.csr_matrix:
    """0/1 matrix customer_ids x stock_codes of a (customer_id, stock_code) relation; pairs
    outside the two lists are left out."""
    customers = session.from_arrow(
        pa.table({"customer_id": customer_ids, "customer_index": np.arange(len(customer_ids))})
    )
    products = session.from_arrow(
        pa.table({"stock_code": stock_codes, "product_index": np.arange(len(stock_codes))})
    )
    cells = (
        pairs.select("customer_id, stock_code")
        .set_alias("pairs")
        .join(customers.set_alias("customers"), "customer_id")
        .join(products.set_alias("products"), "stock_code")
        .select("customer_index, product_index")
        .fetchnumpy()
    )
    matrix = sp.csr_matrix(
        (
            np.ones(len(cells["customer_index"]), dtype=np.int64),
            (np.asarray(cells["customer_index"]), np.asarray(cells["product_index"])),
        ),
        shape=(len(customer_ids), len(stock_codes)),
    )
    matrix.sum_duplicates()
    matrix.data[:] = 1
    return matrix


def chunks(count: int) -> Iterator[slice]:
    for start in range(0, count, CUSTOMERS_PER_CHUNK):
        yield slice(start, min(count, start + CUSTOMERS_PER_CHUNK))


@dataclass(frozen=True)
class TrainingInputs:
    """Everything the evaluation's models learn from (all before the split)."""

    train: Interactions
    rfm: pa.Table  # recency_days, frequency, monetary as of the split


def training_inputs(session, order_products, line_groups, split: Split) -> TrainingInputs:
    return TrainingInputs(
        interactions(session, order_products, split.test_start_date),
        rfm_before(line_groups, split.test_start_date).to_arrow_table(),
    )


def training_segments(
    rfm: pa.Table, settings: SegmentSettings, customer_ids: np.ndarray
) -> np.ndarray:
    """The segment of each training customer: the package's selection rule and fit, refitted
    on the RFM of the training period with the same vars (0 for a customer without one)."""
    check_features(settings, "segment_popularity")
    segments = refit_segments(rfm, settings)
    return align(
        segments.column("customer_id").to_numpy(),
        segments.column("segment_id").to_numpy(),
        customer_ids,
    )


def positions(sorted_ids: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """The index of each wanted id in sorted_ids (ascending), -1 where it is missing."""
    if len(sorted_ids) == 0:
        return np.full(len(wanted), -1, dtype=np.int64)
    pos = np.minimum(np.searchsorted(sorted_ids, wanted), len(sorted_ids) - 1)
    return np.where(sorted_ids[pos] == wanted, pos, -1).astype(np.int64)


def align(ids: np.ndarray, values: np.ndarray, customer_ids: np.ndarray) -> np.ndarray:
    """values (keyed by ids) for customer_ids; 0 where an id is missing."""
    order = np.argsort(ids, kind="stable")
    pos = positions(np.asarray(ids, dtype=np.int64)[order], customer_ids)
    found = np.asarray(values, dtype=np.int64)[order]
    return np.where(pos >= 0, found[np.maximum(pos, 0)] if len(found) else 0, 0)


def evaluate(
    inputs: TrainingInputs,
    test: sp.csr_matrix,
    new_counts: np.ndarray,
    evaluated_rows: np.ndarray,
    settings: SegmentSettings,
    k: int,
) -> tuple[dict[str, Metrics], list[str]]:
    """Every method's metrics on the evaluated customers (rows of the training matrix), and
    notes on a method that could not be fitted (its metrics null)."""
    train = inputs.train
    empty = ranking_metrics(np.zeros((0, k), np.int64), test, np.zeros(0, np.int64), k, 0)
    if train.orders.shape[1] == 0 or len(evaluated_rows) == 0:
        return dict.fromkeys(METHODS, empty), []
    notes = []
    segments = np.zeros(len(train.customer_ids), dtype=np.int64)
    try:
        segments = training_segments(inputs.rfm, settings, train.customer_ids)
    except ValueError as error:
        notes.append(
            f"segment_popularity not evaluated: no segments of the training period ({error})"
        )
    order = tie_order(train)
    bought = train.bought
    results = {}
    for method in METHODS:
        if notes and method == "segment_popularity":
            results[method] = Metrics(len(evaluated_rows), None, None, None, None, None)
            continue
        score = scorer(method, train, segments)
        recommended = np.full((len(evaluated_rows), k), -1, dtype=np.int64)

        def rank(part: slice, score=score) -> np.ndarray:
            rows = evaluated_rows[part]
            return top_n(score(rows, segments[rows]), bought[rows], order, k)[0]

        parts = list(chunks(len(evaluated_rows)))
        ranked = side_by_side(
            [partial(rank, part) for part in parts], max_workers=EVALUATION_CHUNK_WORKERS
        )
        for part, best in zip(parts, ranked, strict=True):
            recommended[part, : best.shape[1]] = best
        results[method] = ranking_metrics(recommended, test, new_counts, k, train.orders.shape[1])
    return results, notes


def evaluation_sample(session, order_products):
    """The customers the evaluation trains and tests on: every customer with a sale order, up
    to EVALUATION_CUSTOMERS, else a deterministic sample of them (the same ids, the same
    sample)."""
    ids = (
        customer_order_products(order_products)
        .aggregate("customer_id", "customer_id")
        .order("customer_id")
        .fetchnumpy()["customer_id"]
    )
    ids = np.asarray(ids, dtype=np.int64)
    chosen = ids[sample_positions(ids, EVALUATION_CUSTOMERS)]
    return session.from_arrow(pa.table({"customer_id": chosen})).set_alias("sample")


def recommendation_evaluation(
    session,
    order_products,
    line_groups,
    customer_rfm,
    holdout_days: object,
    recommendations_n: object,
    settings: SegmentSettings,
) -> pa.Table:
    """recommendation_evaluation: one row per method, the best by recall at k selected."""
    k = checked_n(recommendations_n)
    split = holdout_split(reference_date(customer_rfm), holdout_days)
    sample = evaluation_sample(session, order_products)
    order_products = order_products.join(sample, "customer_id", how="semi")
    line_groups = line_groups.join(sample, "customer_id", how="semi")
    inputs = training_inputs(session, order_products, line_groups, split)
    train = inputs.train
    new = new_purchase_pairs(order_products, split)
    counts = (
        new.aggregate("customer_id, count(*) as new_products", "customer_id")
        .order("customer_id")
        .fetchnumpy()
    )
    evaluated_ids = np.asarray(counts["customer_id"], dtype=np.int64)
    new_counts = np.asarray(counts["new_products"], dtype=np.int64)
    scored = sample_positions(evaluated_ids, SCORED_CUSTOMERS)
    evaluated_ids, new_counts = evaluated_ids[scored], new_counts[scored]
    evaluated_rows = positions(train.customer_ids, evaluated_ids)
    test = product_matrix(new, evaluated_ids, train.stock_codes, session)
    results, notes = evaluate(inputs, test, new_counts, evaluated_rows, settings, k)
    selected, rule = select_method(results)
    rule = "; ".join([rule, *notes])
    return pa.Table.from_pylist(
        [
            {
                "method": method,
                "k": k,
                "customers_evaluated": m.customers,
                "precision_at_k": m.precision,
                "recall_at_k": m.recall,
                "hit_rate_at_k": m.hit_rate,
                "ndcg_at_k": m.ndcg,
                "catalog_coverage": m.coverage,
                "train_end_date": split.train_end_date,
                "test_start_date": split.test_start_date,
                "test_end_date": split.test_end_date,
                "as_of_date": split.as_of_date,
                "is_selected": method == selected,
                "selection_rule": rule,
            }
            for method, m in results.items()
        ],
        schema=EVALUATION_SCHEMA,
    )


def select_method(results: dict[str, Metrics]) -> tuple[str, str]:
    """The method with the highest recall at k (a tie: the first of METHODS) and the rule."""
    scored = [(m, r.recall) for m, r in results.items() if r.recall is not None]
    if not scored:
        return METHODS[0], f"{SELECTION_RULE}; no customer to evaluate, so {METHODS[0]}"
    best = max(r for _, r in scored)
    return next(m for m, r in scored if r == best), SELECTION_RULE


RECOMMENDATION_SCHEMA = pa.schema(
    [
        ("customer_id", pa.int64()),
        ("rank", pa.int32()),
        ("stock_code", pa.string()),
        ("score", pa.float64()),
    ]
)


def customer_recommendations(
    session,
    order_products,
    customer_products,
    customer_rfm,
    customer_segments,
    dim_products,
    evaluation,
    recommendations_n: object,
):
    """customer_recommendations: the selected method refitted on all lines before as_of_date,
    the top recommendations_n products each customer of customer_rfm has not bought."""
    n = checked_n(recommendations_n)
    as_of = reference_date(customer_rfm)
    picked = evaluation.filter("is_selected").select("method").fetchall()
    if len(picked) != 1:
        raise ValueError(f"recommendation_evaluation must select one method, found {len(picked)}")
    method = picked[0][0]
    if method not in METHODS:
        raise ValueError(f"recommendation_evaluation selected an unknown method {method!r}")
    train = interactions(session, order_products, as_of)
    customer_ids = np.asarray(
        customer_rfm.select("customer_id").order("customer_id").fetchnumpy()["customer_id"],
        dtype=np.int64,
    )
    rows = positions(train.customer_ids, customer_ids)
    seg_table = customer_segments.select("customer_id, segment_id").fetchnumpy()
    segments = align(seg_table["customer_id"], seg_table["segment_id"], customer_ids)
    # what a customer has bought: the training matrix; for a customer outside it (a guest
    # numbered by guest_policy), the products of int_customer_products
    outside = session.from_arrow(pa.table({"customer_id": customer_ids[rows < 0]}))
    bought_outside = product_matrix(
        customer_products.filter(f"first_purchased_at < date '{as_of.isoformat()}'").join(
            outside.set_alias("outside"), "customer_id", how="semi"
        ),
        customer_ids,
        train.stock_codes,
        session,
    )
    parts = []
    if train.orders.shape[1]:
        training = align(seg_table["customer_id"], seg_table["segment_id"], train.customer_ids)
        score = scorer(method, train, training)
        order = tie_order(train)
        train_bought = train.bought

        def recommend(part: slice) -> pa.Table:
            inside = rows[part] >= 0
            known = train_bought[np.where(inside, rows[part], 0)]
            bought = sp.diags(inside.astype(np.int8), dtype=np.int8) @ known
            bought = bought + bought_outside[part]
            best, best_scores = top_n(score(rows[part], segments[part]), bought, order, n)
            valid = best >= 0
            ranks = np.broadcast_to(np.arange(1, best.shape[1] + 1), best.shape)
            ids = np.broadcast_to(customer_ids[part][:, None], best.shape)
            return pa.table(
                {
                    "customer_id": pa.array(ids[valid], pa.int64()),
                    "rank": pa.array(ranks[valid], pa.int32()),
                    "stock_code": train.stock_codes.take(pa.array(best[valid])),
                    "score": pa.array(best_scores[valid], pa.float64()),
                },
                schema=RECOMMENDATION_SCHEMA,
            )

        parts = [recommend(part) for part in chunks(len(customer_ids))]
    table = pa.concat_tables(parts) if parts else RECOMMENDATION_SCHEMA.empty_table()
    descriptions = dim_products.select("stock_code, description").set_alias("products")
    return (
        session.from_arrow(table)
        .set_alias("recommendations")
        .join(descriptions, "stock_code", how="left")
        # method is one of METHODS (checked above)
        .select(f"customer_id, rank, stock_code, description, score, '{method}' as method")
        .order("customer_id, rank")
    )
