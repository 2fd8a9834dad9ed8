"""Product recommendations per customer, and the honest test that picks the method.

recommendation_evaluation trains every method on the lines before a split date and tests it on
the products each customer bought for the first time in the holdout window after it;
customer_recommendations refits the selected method on all lines before as_of_date. The split
is set in one place (`holdout_split`); the relational work (filters, distinct pairs, the RFM of
the training period) runs in DuckDB on the dbt relations; Python holds the sparse customer x
product matrix and the models. Method and measurements: docs/recommendations.md.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pyarrow as pa
import scipy.sparse as sp

from customer_segmentation import var_spec
from customer_segmentation.segmentation.segments import fit_customer_segments
from customer_segmentation.segmentation.selection import select_segment_count
from customer_segmentation.segmentation.settings import SegmentSettings
from customer_segmentation.segmentation.threads import KMEANS_MODULES, single_threaded

# In the order that breaks a tie in recall at k (the first wins).
METHODS = ("global_popularity", "segment_popularity", "item_item", "als")
SELECTION_RULE = (
    "highest recall_at_k; a tie goes to the first of global_popularity, segment_popularity, "
    "item_item, als"
)
# Customers scored at once: a dense chunk x products block of float64 (2,000 x 4,000 = 64 MB).
CUSTOMERS_PER_CHUNK = 2_000
# item_item keeps every product's similarities up to this many products, and only its
# NEIGHBOURS most similar products above it (a dense products x products matrix would not fit).
DENSE_SIMILARITY_PRODUCTS = 5_000
NEIGHBOURS = 200
# Fixed ALS settings (implicit 0.7.3, CPU, one thread): the same input gives the same factors.
ALS_FACTORS = 32
ALS_ITERATIONS = 15
ALS_REGULARIZATION = 0.05
ALS_RANDOM_STATE = 42

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


def reference_date(customer_rfm) -> date:
    """customer_rfm's one as_of_date (read, never recomputed)."""
    dates = customer_rfm.aggregate("as_of_date", "as_of_date").fetchall()
    if len(dates) != 1:
        raise ValueError(f"customer_rfm must hold exactly one as_of_date, found {len(dates)}")
    return dates[0][0]


def _before(relation, day: date):
    return relation.filter(f"invoiced_at < date '{day.isoformat()}'")


def customer_order_products(order_products):
    """Sale order products of identified customers: guest orders never count."""
    return order_products.filter("customer_id is not null and not is_guest")


def purchase_pairs(order_products, before: date):
    """One row per customer and product bought before `before`: orders holding it."""
    return _before(customer_order_products(order_products), before).aggregate(
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


def rfm_before(line_groups, before: date):
    """customer_rfm's recency_days, frequency and monetary as of `before`, from the lines
    before it (customers with a sale; guests left out), in customer_id order."""
    day = before.isoformat()
    return (
        _before(line_groups, before)
        .filter("customer_id is not null and not is_guest")
        .aggregate(
            f"""customer_id,
            date '{day}' as as_of_date,
            date_diff('day', cast(max(invoiced_at) filter (where line_type = 'sale') as date),
                      date '{day}') as recency_days,
            count(distinct invoice_no) filter (where line_type = 'sale') as frequency,
            greatest(coalesce(sum(amount) filter (where line_type = 'sale'), 0)
                     + coalesce(sum(amount) filter (where line_type = 'return'), 0), 0)
                as monetary,
            count(*) filter (where line_type = 'sale') as sale_groups""",
            "customer_id",
        )
        .filter("sale_groups > 0")
        .select("customer_id, as_of_date, recency_days, frequency, monetary")
        .order("customer_id")
    )


@dataclass(frozen=True)
class Interactions:
    """The training matrix: customers (ascending id) x products (ascending stock_code)."""

    customer_ids: np.ndarray  # int64
    stock_codes: pa.Array  # string
    orders: sp.csr_matrix  # int64: sale orders of the customer holding the product

    @property
    def bought(self) -> sp.csr_matrix:
        return (self.orders > 0).astype(np.int64).tocsr()

    def popularity(self) -> np.ndarray:
        """Training customers buying each product."""
        return np.asarray(self.bought.sum(axis=0)).ravel().astype(np.float64)


def interactions(pairs) -> Interactions:
    """The sparse matrix of a purchase_pairs relation (indices numbered in DuckDB)."""
    indexed = pairs.query(
        "pairs",
        """select
            dense_rank() over (order by customer_id) - 1 as customer_index,
            dense_rank() over (order by stock_code) - 1 as product_index,
            customer_id, stock_code, orders
        from pairs""",
    )
    codes = indexed.aggregate("product_index, any_value(stock_code) as stock_code", "product_index")
    customers = indexed.aggregate(
        "customer_index, any_value(customer_id) as customer_id", "customer_index"
    )
    cells = indexed.select("customer_index, product_index, orders").fetchnumpy()
    code_table = codes.order("product_index").to_arrow_table()
    id_table = customers.order("customer_index").to_arrow_table()
    n_customers, n_products = id_table.num_rows, code_table.num_rows
    matrix = sp.csr_matrix(
        (
            np.asarray(cells["orders"], dtype=np.int64),
            (np.asarray(cells["customer_index"]), np.asarray(cells["product_index"])),
        ),
        shape=(n_customers, n_products),
    )
    matrix.sort_indices()
    return Interactions(
        id_table.column("customer_id").to_numpy().astype(np.int64),
        code_table.column("stock_code").combine_chunks().cast(pa.string()),
        matrix,
    )


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


# A scorer gives, for training-matrix rows (-1: a customer the model never saw) and segment ids,
# a dense rows x products block of scores.
Scorer = Callable[[np.ndarray, np.ndarray], np.ndarray]


def global_popularity(train: Interactions) -> Scorer:
    popularity = train.popularity()
    return lambda rows, segments: np.broadcast_to(popularity, (len(rows), len(popularity)))


def segment_popularity(train: Interactions, training_segments: np.ndarray) -> Scorer:
    """Training customers of the customer's segment buying each product. training_segments:
    the segment id (>= 1) of each training-matrix row, 0 for none."""
    labels = training_segments.astype(np.int64)
    members = sp.csr_matrix(
        (np.ones(len(labels), dtype=np.int64), (labels, np.arange(len(labels)))),
        shape=(int(labels.max(initial=0)) + 1, len(labels)),
    )
    by_segment = np.asarray((members @ train.bought).todense(), dtype=np.float64)
    by_segment[0] = train.popularity()  # no segment: the global popularity

    def score(rows: np.ndarray, segments: np.ndarray) -> np.ndarray:
        known = np.where((segments > 0) & (segments < len(by_segment)), segments, 0)
        return by_segment[known]

    return score


def item_similarity(bought: sp.csr_matrix) -> np.ndarray | sp.csr_matrix:
    """Cosine similarity of products over training customers (self-similarity 0), counted in
    blocks of products: a dense matrix up to DENSE_SIMILARITY_PRODUCTS products; above, a
    sparse one with each product's NEIGHBOURS most similar (ties to the lower product index)."""
    n = bought.shape[1]
    norms = np.sqrt(np.asarray(bought.sum(axis=0)).ravel().astype(np.float64))
    by_product = bought.T.tocsr()
    dense = n <= DENSE_SIMILARITY_PRODUCTS
    similarity = np.zeros((n, n)) if dense else None
    rows, cols, values = [], [], []
    block = max(1, 4_000_000 // max(n, 1))
    for start in range(0, n, block):
        stop = min(n, start + block)
        together = (by_product[start:stop] @ bought).toarray().astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            cosine = together / np.outer(norms[start:stop], norms)
        cosine[~np.isfinite(cosine)] = 0.0
        cosine[np.arange(stop - start), np.arange(start, stop)] = 0.0
        if dense:
            similarity[start:stop] = cosine
            continue
        top = np.argsort(-cosine, axis=1, kind="stable")[:, :NEIGHBOURS]
        rows.append(np.repeat(np.arange(start, stop), top.shape[1]))
        cols.append(top.ravel())
        values.append(np.take_along_axis(cosine, top, axis=1).ravel())
    if dense:
        return similarity
    matrix = sp.csr_matrix(
        (np.concatenate(values), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n)
    )
    matrix.eliminate_zeros()
    return matrix


def item_item(train: Interactions) -> Scorer:
    """Sum of the cosine similarities of a product to the products the customer bought."""
    bought = train.bought.astype(np.float64)
    similarity = item_similarity(train.bought)

    def score(rows: np.ndarray, segments: np.ndarray) -> np.ndarray:
        safe = np.where(rows >= 0, rows, 0)
        scores = bought[safe] @ similarity
        scores = scores.toarray() if sp.issparse(scores) else np.asarray(scores)
        scores[rows < 0] = 0.0
        return scores

    return score


def als(train: Interactions) -> Scorer:
    """implicit's AlternatingLeastSquares on the orders counts (confidence), fixed settings;
    the score is the dot product of the customer's and the product's factors."""
    from implicit.cpu.als import AlternatingLeastSquares

    with single_threaded(*KMEANS_MODULES):
        model = AlternatingLeastSquares(
            factors=ALS_FACTORS,
            regularization=ALS_REGULARIZATION,
            iterations=ALS_ITERATIONS,
            random_state=ALS_RANDOM_STATE,
            num_threads=1,
            calculate_training_loss=False,
        )
        model.fit(train.orders.astype(np.float32).tocsr(), show_progress=False)
    users = np.asarray(model.user_factors, dtype=np.float64)
    items = np.asarray(model.item_factors, dtype=np.float64)

    def score(rows: np.ndarray, segments: np.ndarray) -> np.ndarray:
        with single_threaded(*KMEANS_MODULES):
            scores = users[np.where(rows >= 0, rows, 0)] @ items.T
        scores[rows < 0] = 0.0
        return scores

    return score


def top_n(
    scores: np.ndarray, bought: sp.csr_matrix, tie_order: np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """The n best products not bought per row: product indices (-1 where fewer) and scores.

    A tie in score goes to the earlier product of tie_order (global popularity, then code).
    Only the products scoring at least each row's n-th best are sorted (np.partition finds it).
    """
    customers = scores.shape[0]
    m = min(n, scores.shape[1])
    if m == 0:
        return np.zeros((customers, 0), np.int64), np.zeros((customers, 0))
    negated = np.negative(scores, dtype=np.float64)
    negated[bought.toarray() > 0] = np.inf
    threshold = np.partition(negated, m - 1, axis=1)[:, m - 1]
    rows, cols = np.nonzero(negated <= threshold[:, None])
    values = negated[rows, cols]
    tie_rank = np.empty(len(tie_order), dtype=np.int64)
    tie_rank[tie_order] = np.arange(len(tie_order))
    order = np.lexsort((tie_rank[cols], values, rows))
    rows, cols, values = rows[order], cols[order], values[order]
    rank = np.arange(len(rows)) - np.searchsorted(rows, rows)
    keep = rank < m
    products = cols[keep].reshape(customers, m)
    best = -values[keep].reshape(customers, m)
    products[~np.isfinite(best)] = -1
    return products, best


def tie_order(train: Interactions) -> np.ndarray:
    """Products by training customers buying, most first; then by stock_code."""
    return np.lexsort((np.arange(train.orders.shape[1]), -train.popularity()))


def chunks(count: int) -> Iterator[slice]:
    for start in range(0, count, CUSTOMERS_PER_CHUNK):
        yield slice(start, min(count, start + CUSTOMERS_PER_CHUNK))


@dataclass(frozen=True)
class Metrics:
    customers: int
    precision: float | None
    recall: float | None
    hit_rate: float | None
    ndcg: float | None
    coverage: float | None


def ranking_metrics(
    recommended: np.ndarray, relevant: sp.csr_matrix, new_counts: np.ndarray, k: int, products: int
) -> Metrics:
    """Precision, recall, hit rate, NDCG (binary relevance, log2 discount) at k, averaged over
    customers, and the share of products recommended to any of them.

    recommended: customers x k product indices (-1 for none); relevant: customers x products
    0/1 of the new products bought in the test; new_counts: new products bought per customer
    (also those outside the training catalog, which no method can recommend).
    """
    customers = len(new_counts)
    if customers == 0:
        return Metrics(0, None, None, None, None, None)
    valid = recommended >= 0
    rows = np.arange(customers)[:, None]
    hits = valid & (relevant[rows, np.where(valid, recommended, 0)].toarray() > 0)
    hit_count = hits.sum(axis=1)
    discount = 1.0 / np.log2(np.arange(k) + 2.0)
    dcg = (hits * discount[: hits.shape[1]]).sum(axis=1)
    ideal = np.cumsum(discount)[np.minimum(new_counts, k) - 1]
    shown = np.unique(recommended[valid])
    return Metrics(
        customers,
        math.fsum(hit_count / k) / customers,
        math.fsum(hit_count / new_counts) / customers,
        math.fsum(hit_count > 0) / customers,
        math.fsum(dcg / ideal) / customers,
        len(shown) / products if products else None,
    )


@dataclass(frozen=True)
class TrainingInputs:
    """Everything the evaluation's models learn from (all before the split)."""

    train: Interactions
    rfm: pa.Table  # recency_days, frequency, monetary as of the split


def training_inputs(order_products, line_groups, split: Split) -> TrainingInputs:
    return TrainingInputs(
        interactions(purchase_pairs(order_products, split.test_start_date)),
        rfm_before(line_groups, split.test_start_date).to_arrow_table(),
    )


def training_segments(
    rfm: pa.Table, settings: SegmentSettings, customer_ids: np.ndarray
) -> np.ndarray:
    """The segment of each training customer: the package's selection rule and fit, refitted
    on the RFM of the training period with the same vars (0 for a customer without one)."""
    selection = select_segment_count(rfm, settings)
    segments = fit_customer_segments(rfm, selection)
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


def scorer(method: str, train: Interactions, segments: np.ndarray) -> Scorer:
    if method == "global_popularity":
        return global_popularity(train)
    if method == "segment_popularity":
        return segment_popularity(train, segments)
    if method == "item_item":
        return item_item(train)
    if method == "als":
        return als(train)
    raise ValueError(f"unknown recommendation method {method!r}")


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
        for part in chunks(len(evaluated_rows)):
            rows = evaluated_rows[part]
            best, _ = top_n(score(rows, segments[rows]), bought[rows], order, k)
            recommended[part, : best.shape[1]] = best
        results[method] = ranking_metrics(recommended, test, new_counts, k, train.orders.shape[1])
    return results, notes


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
    inputs = training_inputs(order_products, line_groups, split)
    train = inputs.train
    new = new_purchase_pairs(order_products, split)
    counts = (
        new.aggregate("customer_id, count(*) as new_products", "customer_id")
        .order("customer_id")
        .fetchnumpy()
    )
    evaluated_ids = np.asarray(counts["customer_id"], dtype=np.int64)
    new_counts = np.asarray(counts["new_products"], dtype=np.int64)
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
        ("method", pa.string()),
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
    train = interactions(purchase_pairs(order_products, as_of))
    customer_ids = np.asarray(
        customer_rfm.select("customer_id").order("customer_id").fetchnumpy()["customer_id"],
        dtype=np.int64,
    )
    rows = positions(train.customer_ids, customer_ids)
    seg_table = customer_segments.select("customer_id, segment_id").fetchnumpy()
    segments = align(seg_table["customer_id"], seg_table["segment_id"], customer_ids)
    bought = product_matrix(
        customer_products.filter(f"first_purchased_at < date '{as_of.isoformat()}'"),
        customer_ids,
        train.stock_codes,
        session,
    )
    parts = []
    if train.orders.shape[1]:
        training = align(seg_table["customer_id"], seg_table["segment_id"], train.customer_ids)
        score = scorer(method, train, training)
        order = tie_order(train)
        for part in chunks(len(customer_ids)):
            best, best_scores = top_n(score(rows[part], segments[part]), bought[part], order, n)
            valid = best >= 0
            ranks = np.broadcast_to(np.arange(1, best.shape[1] + 1), best.shape)
            ids = np.broadcast_to(customer_ids[part][:, None], best.shape)
            parts.append(
                pa.table(
                    {
                        "customer_id": pa.array(ids[valid], pa.int64()),
                        "rank": pa.array(ranks[valid], pa.int32()),
                        "stock_code": train.stock_codes.take(pa.array(best[valid])),
                        "score": pa.array(best_scores[valid], pa.float64()),
                        "method": pa.array([method] * int(valid.sum()), pa.string()),
                    },
                    schema=RECOMMENDATION_SCHEMA,
                )
            )
    table = pa.concat_tables(parts) if parts else RECOMMENDATION_SCHEMA.empty_table()
    descriptions = dim_products.select("stock_code, description").set_alias("products")
    return (
        session.from_arrow(table)
        .set_alias("recommendations")
        .set_alias("recommendations")
        .join(descriptions.set_alias("products"), "stock_code", how="left")
        .select("customer_id, rank, stock_code, description, score, method")
        .order("customer_id, rank")
    )
