"""Product recommendations per customer in two lists, and the honest test that picks each
list's method.

recommendation_evaluation trains every method on the lines before the holdout split and tests
it on what each customer bought in the holdout after it: the new-products list on the products
new to the customer, the re-order list on the products bought again, both on all of them.
customer_recommendations and customer_reorder_recommendations refit each list's selected method
on the lines before as_of_date. The split and the test targets come from the SQL models
(int_evaluation_cuts, int_recommendation_holdout), the RFM of the training period from
int_customer_rfm_at_cuts; Python reads the training matrix from DuckDB, fits and scores.
Method and measurements: docs/recommendations.md.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from functools import partial
from itertools import pairwise

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp

from customer_segmentation import reorders, var_spec
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
from customer_segmentation.reorders import REORDER_METHODS
from customer_segmentation.segmentation.asof import (
    cut_of,
    lines_before,
    reference_date,
    refit_segments,
    rfm_at,
)
from customer_segmentation.segmentation.features import sample_positions
from customer_segmentation.segmentation.settings import SegmentSettings
from customer_segmentation.segmentation.threads import (
    side_by_side,
)

LIST_METHODS = {"new": METHODS, "reorder": REORDER_METHODS}
SELECTION_RULES = {
    kind: "highest recall_at_k on the list's own target; a tie goes to the first of "
    + ", ".join(methods)
    for kind, methods in LIST_METHODS.items()
}
# The evaluation trains and tests on all customers up to this many, else on a deterministic
# sample of them (segmentation.features.sample_positions): its memory and time stay bounded
# (about 16 million customer x product cells) whatever the size of the input.
EVALUATION_CUSTOMERS = 200_000
# Of the customers the evaluation tests (a sale before the split and a product bought after
# it), at most this many are scored, the same kind of deterministic sample (a subset of the one
# above). Training still uses every customer of that sample; only the ranking of each tested
# customer's products, the costly part (a customers x products block per method), is bounded.
# At 10,000 customers the standard error of a mean recall at 10 near 0.02 is about 0.0006,
# of a hit rate near 0.5 about 0.005; every method is scored on the same customers.
SCORED_CUSTOMERS = 10_000

# customer_reorder_recommendations scores and ranks the pairs in DuckDB, in ranges of customers
# holding about this many order-product rows each, so that DuckDB's share stays bounded.
REORDER_ROWS_PER_PART = 20_000_000

EVALUATION_SCHEMA = pa.schema(
    [
        ("method", pa.string()),
        ("list_kind", pa.string()),
        ("k", pa.int32()),
        ("customers_evaluated", pa.int64()),
        ("precision_at_k", pa.float64()),
        ("recall_at_k", pa.float64()),
        ("hit_rate_at_k", pa.float64()),
        ("ndcg_at_k", pa.float64()),
        ("catalog_coverage", pa.float64()),
        ("customers_evaluated_all_items", pa.int64()),
        ("precision_at_k_all_items", pa.float64()),
        ("recall_at_k_all_items", pa.float64()),
        ("hit_rate_at_k_all_items", pa.float64()),
        ("ndcg_at_k_all_items", pa.float64()),
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

    @property
    def holdout_days(self) -> int:
        return (self.as_of_date - self.test_start_date).days


def split_at(cut: date, as_of_date: date) -> Split:
    return Split(as_of_date, cut - timedelta(days=1), cut, as_of_date - timedelta(days=1))


def holdout_split(evaluation_cuts) -> Split:
    """THE split of the evaluation, as int_evaluation_cuts computed it (the only place)."""
    return split_at(*cut_of(evaluation_cuts, "recommendation_holdout"))


def checked_n(recommendations_n: object) -> int:
    """The var recommendations_n, checked again in Python."""
    var_spec.check("recommendations_n", recommendations_n, {})
    return int(recommendations_n)  # type: ignore[call-overload]


def customer_order_products(order_products):
    """Sale order products of identified customers: guest orders never count."""
    return order_products.filter("customer_id is not null and not is_guest")


def customer_ranges(lines, rows_per_part: int | None = None) -> tuple[list[str], int]:
    """Filters on customer_id that split `lines` into ascending ranges of customers holding
    about `rows_per_part` (default ROWS_PER_PART) rows each (one filter taking every row when
    they are fewer), and the number of rows."""
    part = rows_per_part or ROWS_PER_PART
    per_customer = (
        lines.aggregate("customer_id, count(*) as n", "customer_id")
        .order("customer_id")
        .fetchnumpy()
    )
    ids = np.asarray(per_customer["customer_id"], dtype=np.int64)
    held = np.cumsum(np.asarray(per_customer["n"], dtype=np.int64))
    if len(ids) == 0 or held[-1] <= part:
        return ["true"], int(held[-1]) if len(ids) else 0
    # a range starts at the first customer past each multiple of ROWS_PER_PART rows
    starts = np.searchsorted(held, np.arange(part, held[-1], part), "right")
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
class Targets:
    """The scored customers (ascending ids, their training rows) and what they bought in the
    holdout, as 0/1 customers x training products: all products, the new ones and the
    re-ordered ones; the counts include products unknown to training (no method can know them)."""

    customer_ids: np.ndarray
    rows: np.ndarray
    all_items: sp.csr_matrix
    new: sp.csr_matrix
    reorder: sp.csr_matrix
    all_counts: np.ndarray
    new_counts: np.ndarray
    reorder_counts: np.ndarray


def holdout_targets(session, holdout, train: Interactions) -> Targets:
    """At most SCORED_CUSTOMERS customers of the holdout (int_recommendation_holdout), a
    deterministic sample, with their targets."""
    counts = (
        holdout.select("customer_id, new_products, reordered_products, holdout_products")
        .distinct()
        .order("customer_id")
        .fetchnumpy()
    )
    ids = np.asarray(counts["customer_id"], dtype=np.int64)
    scored = sample_positions(ids, SCORED_CUSTOMERS)
    ids = ids[scored]
    rows = positions(train.customer_ids, ids)
    known = rows >= 0  # a tested customer always has a training row; kept safe
    ids, rows, scored = ids[known], rows[known], scored[known]
    chosen = session.from_arrow(pa.table({"customer_id": ids})).set_alias("scored")
    pairs = holdout.join(chosen, "customer_id", how="semi")
    new = product_matrix(pairs.filter("not is_reorder"), ids, train.stock_codes, session)
    again = product_matrix(pairs.filter("is_reorder"), ids, train.stock_codes, session)
    return Targets(
        ids,
        rows,
        (new + again).tocsr(),
        new,
        again,
        np.asarray(counts["holdout_products"], dtype=np.int64)[scored],
        np.asarray(counts["new_products"], dtype=np.int64)[scored],
        np.asarray(counts["reordered_products"], dtype=np.int64)[scored],
    )


def training_segments(
    rfm: pa.Table, settings: SegmentSettings, customer_ids: np.ndarray
) -> np.ndarray:
    """The segment of each training customer: the package's selection rule and fit, refitted
    on the RFM at the split (int_customer_rfm_at_cuts) with the same vars (0 for none)."""
    segments = refit_segments(rfm, settings)
    return align(
        segments.column("customer_id").to_numpy(),
        segments.column("segment_id").to_numpy(),
        customer_ids,
    )


def rfm_at_split(rfm_at_cuts, split: Split, sample) -> pa.Table:
    """customer_rfm's columns as of the split for the sampled customers (as_of_date = split)."""
    return (
        rfm_at(rfm_at_cuts, split.test_start_date)
        .join(sample, "customer_id", how="semi")
        .order("customer_id")
        .to_arrow_table()
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


def list_metrics(
    recommended: np.ndarray,
    targets: Targets,
    own: sp.csr_matrix,
    own_counts: np.ndarray,
    k: int,
    products: int,
) -> tuple[Metrics, Metrics]:
    """Metrics of a ranking on the list's own target (customers with one) and on all items."""
    has_own = own_counts > 0
    mine = ranking_metrics(recommended[has_own], own[has_own], own_counts[has_own], k, products)
    every = ranking_metrics(recommended, targets.all_items, targets.all_counts, k, products)
    return mine, every


def not_evaluated(targets: Targets, own_counts: np.ndarray) -> tuple[Metrics, Metrics]:
    """The metrics of a method that could not be fitted: its customers, no figures."""
    return (
        Metrics(int((own_counts > 0).sum()), None, None, None, None, None),
        Metrics(len(targets.all_counts), None, None, None, None, None),
    )


def evaluate_new(
    train: Interactions, targets: Targets, rfm: pa.Table, settings: SegmentSettings, k: int
) -> tuple[dict[str, tuple[Metrics, Metrics]], list[str]]:
    """The new-products methods ranked for the scored customers (never a product they bought),
    and notes on a method that could not be fitted (its metrics null)."""
    empty = ranking_metrics(np.zeros((0, k), np.int64), targets.new, np.zeros(0, np.int64), k, 0)
    if train.orders.shape[1] == 0 or len(targets.rows) == 0:
        return dict.fromkeys(METHODS, (empty, empty)), []
    notes = []
    segments = np.zeros(len(train.customer_ids), dtype=np.int64)
    try:
        segments = training_segments(rfm, settings, train.customer_ids)
    except ValueError as error:
        notes.append(
            f"segment_popularity not evaluated: no segments of the training period ({error})"
        )
    order = tie_order(train)
    bought = train.bought
    shared: dict = {}
    results = {}
    for method in METHODS:
        if notes and method == "segment_popularity":
            results[method] = not_evaluated(targets, targets.new_counts)
            continue
        score = scorer(method, train, segments, shared)
        recommended = np.full((len(targets.rows), k), -1, dtype=np.int64)

        def rank(part: slice, score=score) -> np.ndarray:
            rows = targets.rows[part]
            return top_n(score(rows, segments[rows]), bought[rows], order, k)[0]

        parts = list(chunks(len(targets.rows)))
        ranked = side_by_side(
            [partial(rank, part) for part in parts], max_workers=EVALUATION_CHUNK_WORKERS
        )
        for part, best in zip(parts, ranked, strict=True):
            recommended[part, : best.shape[1]] = best
        del score
        results[method] = list_metrics(
            recommended, targets, targets.new, targets.new_counts, k, train.orders.shape[1]
        )
    return results, notes


def reorder_fit(lines, ids: np.ndarray, fit_cut: date, window_days: int, score_cut: date, session):
    """reorder_timing fitted on a deterministic sample of `ids` (REORDER_FIT_CUSTOMERS): the
    features before `fit_cut`, the label ordered in the window after it; with the popularity
    of products at `score_cut` for the scoring. None and a note when nothing can be learned."""
    sample = ids[sample_positions(ids, reorders.REORDER_FIT_CUSTOMERS)]
    fit_lines = lines.join(
        session.from_arrow(pa.table({"customer_id": sample})).set_alias("fit_sample"),
        "customer_id",
        how="semi",
    )
    features = reorders.pair_features(
        fit_lines, fit_cut, reorders.popularity(fit_lines, fit_cut), window_days
    )
    try:
        model = reorders.fit_reorder_timing(features)
    except reorders.NoReorderFit as error:
        return None, None, f"{error} after {fit_cut}"
    return model, reorders.popularity(fit_lines, score_cut), None


def ranked_pairs(ranked, ids: np.ndarray, codes: pa.Array, k: int) -> np.ndarray:
    """customers (ids) x k product indices (in `codes`) of a top_per_customer relation."""
    table = ranked.order("customer_id, rank").to_arrow_table()
    recommended = np.full((len(ids), k), -1, dtype=np.int64)
    if table.num_rows == 0:
        return recommended
    row = positions(ids, table.column("customer_id").to_numpy().astype(np.int64))
    rank = table.column("rank").to_numpy().astype(np.int64) - 1
    product = pc.index_in(table.column("stock_code"), value_set=codes)
    product = product.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    keep = row >= 0
    recommended[row[keep], rank[keep]] = product[keep]
    return recommended


def evaluate_reorder(
    session, lines, train: Interactions, targets: Targets, split: Split, k: int
) -> tuple[dict[str, tuple[Metrics, Metrics]], list[str]]:
    """The re-order methods ranked for the scored customers, among the products each bought
    before the split; reorder_timing fitted on the window before the split."""
    products = train.orders.shape[1]
    empty = ranking_metrics(
        np.zeros((0, k), np.int64), targets.reorder, np.zeros(0, np.int64), k, 0
    )
    if products == 0 or len(targets.rows) == 0:
        return dict.fromkeys(REORDER_METHODS, (empty, empty)), []
    window = split.holdout_days
    fit_cut = split.test_start_date - timedelta(days=window)
    model, shares, note = reorder_fit(
        lines, train.customer_ids, fit_cut, window, split.test_start_date, session
    )
    scored_lines = lines.join(
        session.from_arrow(pa.table({"customer_id": targets.customer_ids})).set_alias("scored"),
        "customer_id",
        how="semi",
    )
    results = {}
    notes = [f"reorder_timing not evaluated: {note}"] if note else []
    for method in REORDER_METHODS:
        if method == "reorder_timing" and model is None:
            results[method] = not_evaluated(targets, targets.reorder_counts)
            continue
        shown = (
            shares
            if shares is not None
            else reorders.popularity(scored_lines, split.test_start_date)
        )
        features = reorders.pair_features(scored_lines, split.test_start_date, shown)
        ranked = reorders.top_per_customer(features, method, model, k)
        recommended = ranked_pairs(ranked, targets.customer_ids, train.stock_codes, k)
        results[method] = list_metrics(
            recommended, targets, targets.reorder, targets.reorder_counts, k, products
        )
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
    evaluation_cuts,
    rfm_at_cuts,
    holdout,
    recommendations_n: object,
    settings: SegmentSettings,
) -> pa.Table:
    """recommendation_evaluation: one row per list and method, each list's best by recall at k
    on its own target selected."""
    k = checked_n(recommendations_n)
    split = holdout_split(evaluation_cuts)
    sample = evaluation_sample(session, order_products)
    order_products = order_products.join(sample, "customer_id", how="semi")
    train = interactions(session, order_products, split.test_start_date)
    targets = holdout_targets(session, holdout.join(sample, "customer_id", how="semi"), train)
    new, new_notes = evaluate_new(
        train, targets, rfm_at_split(rfm_at_cuts, split, sample), settings, k
    )
    lines = customer_order_products(order_products)
    again, reorder_notes = evaluate_reorder(session, lines, train, targets, split, k)
    rows = []
    for kind, results, notes in (("new", new, new_notes), ("reorder", again, reorder_notes)):
        selected, rule = select_method(
            {m: mine for m, (mine, _) in results.items()}, LIST_METHODS[kind], SELECTION_RULES[kind]
        )
        rule = "; ".join([rule, *notes])
        for method, (mine, every) in results.items():
            rows.append(
                {
                    "method": method,
                    "list_kind": kind,
                    "k": k,
                    "customers_evaluated": mine.customers,
                    "precision_at_k": mine.precision,
                    "recall_at_k": mine.recall,
                    "hit_rate_at_k": mine.hit_rate,
                    "ndcg_at_k": mine.ndcg,
                    "catalog_coverage": mine.coverage,
                    "customers_evaluated_all_items": every.customers,
                    "precision_at_k_all_items": every.precision,
                    "recall_at_k_all_items": every.recall,
                    "hit_rate_at_k_all_items": every.hit_rate,
                    "ndcg_at_k_all_items": every.ndcg,
                    "train_end_date": split.train_end_date,
                    "test_start_date": split.test_start_date,
                    "test_end_date": split.test_end_date,
                    "as_of_date": split.as_of_date,
                    "is_selected": method == selected,
                    "selection_rule": rule,
                }
            )
    return pa.Table.from_pylist(rows, schema=EVALUATION_SCHEMA)


def select_method(
    results: dict[str, Metrics], methods: tuple[str, ...], rule: str
) -> tuple[str, str]:
    """The method with the highest recall at k (a tie: the first of `methods`) and the rule."""
    scored = [(m, results[m].recall) for m in methods if results[m].recall is not None]
    if not scored:
        return methods[0], f"{rule}; no customer to evaluate, so {methods[0]}"
    best = max(r for _, r in scored)
    return next(m for m, r in scored if r == best), rule


def selected_method(evaluation, list_kind: str) -> str:
    """The method recommendation_evaluation selected for the list."""
    picked = (
        evaluation.filter(f"is_selected and list_kind = '{list_kind}'").select("method").fetchall()
    )
    if len(picked) != 1:
        raise ValueError(
            f"recommendation_evaluation must select one {list_kind} method, found {len(picked)}"
        )
    method = picked[0][0]
    if method not in LIST_METHODS[list_kind]:
        raise ValueError(f"recommendation_evaluation selected an unknown method {method!r}")
    return method


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
    method = selected_method(evaluation, "new")
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


REORDER_SCHEMA = pa.schema(
    [
        ("customer_id", pa.int64()),
        ("rank", pa.int32()),
        ("stock_code", pa.string()),
        ("score", pa.float64()),
        ("method", pa.string()),
    ]
)


def customer_reorder_recommendations(
    session, order_products, customer_rfm, evaluation_cuts, evaluation, recommendations_n: object
):
    """customer_reorder_recommendations: the re-order method recommendation_evaluation
    selected, refitted on the window before as_of_date (reorder_timing: features before the
    split, re-orders in the holdout), each customer's best recommendations_n products among
    those they ordered before as_of_date. Scored and ranked in DuckDB, in ranges of customers
    holding about REORDER_ROWS_PER_PART order-product rows each."""
    n = checked_n(recommendations_n)
    as_of = reference_date(customer_rfm)
    split = holdout_split(evaluation_cuts)
    method = selected_method(evaluation, "reorder")
    customers = customer_rfm.select("customer_id").set_alias("rfm_customers")
    lines = lines_before(customer_order_products(order_products), as_of).join(
        customers, "customer_id", how="semi"
    )
    trained = np.asarray(
        lines.aggregate("customer_id", "customer_id")
        .order("customer_id")
        .fetchnumpy()["customer_id"],
        dtype=np.int64,
    )
    model, shares = None, None
    if method == "reorder_timing":
        model, shares, _ = reorder_fit(
            lines, trained, split.test_start_date, split.holdout_days, as_of, session
        )
        if model is None:  # nothing to learn in the last window: the personal baseline
            method = "most_ordered"
    if shares is None:
        sample = trained[sample_positions(trained, reorders.REORDER_FIT_CUSTOMERS)]
        shares = reorders.popularity(
            lines.join(
                session.from_arrow(pa.table({"customer_id": sample})).set_alias("sample"),
                "customer_id",
                how="semi",
            ),
            as_of,
        )
    shares = session.from_arrow(shares.to_arrow_table()).set_alias("popularity")
    ranges, _ = customer_ranges(lines, REORDER_ROWS_PER_PART)
    parts = []
    for customer_range in ranges:
        features = reorders.pair_features(lines.filter(customer_range), as_of, shares)
        parts.append(
            reorders.top_per_customer(features, method, model, n)
            .select(
                f"""customer_id, cast(rank as integer) as rank, stock_code, score,
                '{method}' as method"""
            )
            .order("customer_id, rank")
            .to_arrow_table()
        )
    table = pa.concat_tables(parts) if parts else None
    if table is None or table.num_rows == 0:
        return REORDER_SCHEMA.empty_table()
    return table.cast(REORDER_SCHEMA)
