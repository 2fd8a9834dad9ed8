"""The recommenders of new products and their ranking metrics: each method turns the training
matrix into a scorer, `top_n` ranks the products a customer has not bought, `ranking_metrics`
scores a ranking against the products bought later. The re-order list's methods are in
reorders.py. Called by recommend.py (the split, the relations and the marts); method and
measurements: docs/recommendations.md.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cached_property, partial

import numpy as np
import pyarrow as pa
import scipy.sparse as sp

from customer_segmentation.memory import (
    DENSE_SIMILARITY_PRODUCTS,
    EASE_PRODUCTS,
    ENTRIES_PER_BLOCK,
)
from customer_segmentation.segmentation.threads import (
    KMEANS_MODULES,
    side_by_side,
    single_threaded,
    usable_cores,
)

# In the order that breaks a tie in recall at k (the first wins).
METHODS = ("global_popularity", "segment_popularity", "item_item", "als", "ease")
# item_item keeps only each product's NEIGHBOURS most similar products above
# DENSE_SIMILARITY_PRODUCTS products (customer_segmentation.memory).
NEIGHBOURS = 200
# Fixed ALS settings (implicit 0.7.3, CPU): the same input gives the same factors. implicit
# solves each customer's (and product's) factors on its own, so the result does not depend on
# the number of threads (0: every usable core, passed to implicit as a number, since the
# one-thread OpenMP limit of `single_threaded` would leave its 0 one thread; checked to the
# bit in tests/pytest/test_recommend.py). At 10M lines the fit takes 8.8 s on two threads
# against 14.1 s on one.
ALS_FACTORS = 32
ALS_ITERATIONS = 15
ALS_REGULARIZATION = 0.05
ALS_RANDOM_STATE = 42
ALS_THREADS = 0
# EASE (Steck 2019): the L2 penalty added to the diagonal of the products x products
# co-purchase matrix before it is inverted; it keeps the EASE_PRODUCTS most popular products
# (customer_segmentation.memory).
EASE_REGULARIZATION = 200.0


@dataclass(frozen=True)
class Interactions:
    """The training matrix: customers (ascending id) x products (ascending stock_code)."""

    customer_ids: np.ndarray  # int64
    stock_codes: pa.Array  # string
    orders: sp.csr_matrix  # int32, sorted indices: sale orders of the customer holding the product

    @cached_property
    def bought(self) -> sp.csr_matrix:
        """0/1 (int8) sharing the index arrays of `orders`: no second copy of the matrix."""
        ones = np.ones(self.orders.nnz, dtype=np.int8)
        return sp.csr_matrix((ones, self.orders.indices, self.orders.indptr), self.orders.shape)

    def popularity(self) -> np.ndarray:
        """Training customers buying each product."""
        counts = np.bincount(self.orders.indices, minlength=self.orders.shape[1])
        return counts.astype(np.float64)

    def row_blocks(self) -> Iterator[slice]:
        """Slices of customers holding about ENTRIES_PER_BLOCK matrix entries each."""
        indptr = self.orders.indptr
        start = 0
        while start < self.orders.shape[0]:
            stop = int(np.searchsorted(indptr, indptr[start] + ENTRIES_PER_BLOCK, side="right"))
            stop = min(self.orders.shape[0], max(stop - 1, start + 1))
            yield slice(start, stop)
            start = stop


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
    n = train.orders.shape[1]
    cells = (int(labels.max(initial=0)) + 1) * n
    counts = np.zeros(cells, dtype=np.int64)
    for block in train.row_blocks():
        bought = train.bought[block]
        segment = np.repeat(labels[block], np.diff(bought.indptr))
        counts += np.bincount(segment * n + bought.indices, minlength=cells)
    by_segment = counts.reshape(-1, n).astype(np.float64)
    by_segment[0] = train.popularity()  # no segment: the global popularity

    def score(rows: np.ndarray, segments: np.ndarray) -> np.ndarray:
        known = np.where((segments > 0) & (segments < len(by_segment)), segments, 0)
        return by_segment[known]

    return score


def co_purchases(train: Interactions, columns: np.ndarray | None = None) -> np.ndarray:
    """Products x products (of `columns`, default all): training customers buying both
    (diagonal: buying each), summed over blocks of customers so that no copy of the whole
    matrix is made. The blocks are shared out to the usable cores (SciPy's sparse product holds
    one); the counts are integers, so the sum does not depend on how they were shared. int32
    (a count is at most the number of customers) keeps two workers' dense matrices the size one
    int64 matrix was."""
    bought = train.bought
    n = train.orders.shape[1] if columns is None else len(columns)
    blocks = list(train.row_blocks())
    workers = max(1, min(usable_cores(), len(blocks)))

    def count(share: list[slice]) -> np.ndarray:
        together = np.zeros((n, n), dtype=np.int32)
        for block in share:
            part = bought[block] if columns is None else bought[block][:, columns]
            part = part.astype(np.int32)
            together += (part.T @ part).toarray()
        return together

    shares = side_by_side([partial(count, blocks[i::workers]) for i in range(workers)])
    together = shares[0]
    for share in shares[1:]:
        together += share
    return together


def item_similarity(
    train: Interactions, together: np.ndarray | None = None
) -> np.ndarray | sp.csr_matrix:
    """Cosine similarity of products over training customers (self-similarity 0): a dense
    matrix up to DENSE_SIMILARITY_PRODUCTS products; above, a sparse one with each product's
    NEIGHBOURS most similar (ties to the lower product index), counted in blocks of products."""
    n = train.orders.shape[1]
    norms = np.sqrt(train.popularity())
    dense = n <= DENSE_SIMILARITY_PRODUCTS
    if dense:
        with np.errstate(divide="ignore", invalid="ignore"):
            counts = co_purchases(train) if together is None else together
            similarity = counts / np.outer(norms, norms)
        similarity[~np.isfinite(similarity)] = 0.0
        np.fill_diagonal(similarity, 0.0)
        return similarity
    bought = train.bought.astype(np.int64)
    by_product = bought.T.tocsr()
    rows, cols, values = [], [], []
    block = max(1, 4_000_000 // max(n, 1))
    for start in range(0, n, block):
        stop = min(n, start + block)
        together = (by_product[start:stop] @ bought).toarray().astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            cosine = together / np.outer(norms[start:stop], norms)
        cosine[~np.isfinite(cosine)] = 0.0
        cosine[np.arange(stop - start), np.arange(start, stop)] = 0.0
        top = np.argsort(-cosine, axis=1, kind="stable")[:, :NEIGHBOURS]
        rows.append(np.repeat(np.arange(start, stop), top.shape[1]))
        cols.append(top.ravel())
        values.append(np.take_along_axis(cosine, top, axis=1).ravel())
    matrix = sp.csr_matrix(
        (np.concatenate(values), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n)
    )
    matrix.eliminate_zeros()
    return matrix


def item_item(train: Interactions, together: np.ndarray | None = None) -> Scorer:
    """Sum of the cosine similarities of a product to the products the customer bought."""
    similarity = item_similarity(train, together)

    def score(rows: np.ndarray, segments: np.ndarray) -> np.ndarray:
        safe = np.where(rows >= 0, rows, 0)
        scores = train.bought[safe].astype(np.float64) @ similarity
        scores = scores.toarray() if sp.issparse(scores) else np.asarray(scores)
        scores[rows < 0] = 0.0
        return scores

    return score


def als(train: Interactions) -> Scorer:
    """implicit's AlternatingLeastSquares on the orders counts (confidence), fixed settings;
    the score is the dot product of the customer's and the product's factors."""
    from implicit.cpu.als import AlternatingLeastSquares

    orders = train.orders
    confidence = sp.csr_matrix(
        (orders.data.astype(np.float32), orders.indices, orders.indptr), orders.shape
    )
    with single_threaded(*KMEANS_MODULES):
        model = AlternatingLeastSquares(
            factors=ALS_FACTORS,
            regularization=ALS_REGULARIZATION,
            iterations=ALS_ITERATIONS,
            random_state=ALS_RANDOM_STATE,
            num_threads=ALS_THREADS or usable_cores(),
            calculate_training_loss=False,
        )
        model.fit(confidence, show_progress=False)
    del confidence
    users = np.asarray(model.user_factors, dtype=np.float64)
    items = np.asarray(model.item_factors, dtype=np.float64)

    def score(rows: np.ndarray, segments: np.ndarray) -> np.ndarray:
        with single_threaded(*KMEANS_MODULES):
            scores = users[np.where(rows >= 0, rows, 0)] @ items.T
        scores[rows < 0] = 0.0
        return scores

    return score


def ease_weights(together: np.ndarray, regularization: float) -> np.ndarray:
    """EASE's item x item weights B = I - P diag(1 / diag(P)), P = (G + lambda I)^-1, for the
    Gram matrix G of the 0/1 customer x product matrix: the closed form of min ||X - XB||^2 +
    lambda ||B||^2 subject to diag(B) = 0 (Steck 2019). G + lambda I is symmetric positive
    definite: LAPACK's Cholesky factor and inverse (potrf, potri), in one matrix's memory."""
    from scipy.linalg import lapack

    gram = np.array(together, dtype=np.float64, order="F")
    gram[np.diag_indices_from(gram)] += regularization
    factor, info = lapack.dpotrf(gram, lower=0, overwrite_a=1)
    if info != 0:
        raise np.linalg.LinAlgError(f"EASE: the Cholesky factorisation failed ({info})")
    inverse, info = lapack.dpotri(factor, lower=0, overwrite_c=1)
    if info != 0:
        raise np.linalg.LinAlgError(f"EASE: the inverse failed ({info})")
    # potri fills the upper triangle: mirror it
    upper = np.triu(inverse)
    precision = upper + np.triu(upper, 1).T
    weights = precision / -np.diag(precision)[None, :]
    np.fill_diagonal(weights, 0.0)
    return weights


def ease(train: Interactions, together: np.ndarray | None = None) -> Scorer:
    """EASE (Steck 2019): a product's score is the customer's 0/1 purchases times its column
    of B, over the EASE_PRODUCTS most popular products (the others score 0)."""
    n = train.orders.shape[1]
    popularity = train.popularity()
    kept = np.sort(np.lexsort((np.arange(n), -popularity))[:EASE_PRODUCTS])
    if len(kept) < n:
        gram = co_purchases(train, kept)
    else:
        gram = co_purchases(train) if together is None else together
    with single_threaded(*KMEANS_MODULES):
        weights = ease_weights(gram, EASE_REGULARIZATION)
    del gram
    bought = train.bought[:, kept] if len(kept) < n else train.bought

    def score(rows: np.ndarray, segments: np.ndarray) -> np.ndarray:
        safe = np.where(rows >= 0, rows, 0)
        with single_threaded(*KMEANS_MODULES):
            part = bought[safe].astype(np.float64) @ weights
        scores = np.zeros((len(rows), n))
        scores[:, kept] = np.asarray(part)
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


def scorer(
    method: str, train: Interactions, segments: np.ndarray, shared: dict | None = None
) -> Scorer:
    """The method's scorer. `shared` keeps the co-purchase counts between item_item and ease
    when both are fitted on the same matrix (the evaluation)."""
    if method == "global_popularity":
        return global_popularity(train)
    if method == "segment_popularity":
        return segment_popularity(train, segments)
    if method in ("item_item", "ease"):
        together = None
        if shared is not None and train.orders.shape[1] <= DENSE_SIMILARITY_PRODUCTS:
            if "co_purchases" not in shared:
                shared["co_purchases"] = co_purchases(train)
            together = shared["co_purchases"]
        return item_item(train, together) if method == "item_item" else ease(train, together)
    if method == "als":
        return als(train)
    raise ValueError(f"unknown recommendation method {method!r}")


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
