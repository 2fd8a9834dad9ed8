"""Recommendations: the honest time split, the two lists' methods and their metrics.

The functions of recommend.py, recommenders.py and reorders.py run on DuckDB relations built
here from generated lines (no dbt; the SQL models' inputs, the cut, the holdout targets and the
RFM at the split, are computed here independently); the marts are checked on the sample build.
"""

from __future__ import annotations

import datetime as dt
import math

import duckdb
import numpy as np
import pyarrow as pa
import pytest
import scipy.sparse as sp

from customer_segmentation import recommend, recommenders, reorders
from customer_segmentation.reorders import REORDER_METHODS
from customer_segmentation.segmentation import threads as threads_module
from customer_segmentation.segmentation.settings import validate_settings

AS_OF = dt.date(2011, 12, 10)
SPLIT = dt.datetime(2011, 9, 11)  # AS_OF - 90 days
START = dt.datetime(2011, 1, 3, 9, 0)


def planted_lines(groups: int = 6, per_group: int = 40, products: int = 15, seed: int = 7):
    """Customers of group g buy only products G<g>-<p>: 5 of them over 3 invoices before the
    split, then 4 more of the same set (some already bought) in the holdout window."""
    rng = np.random.default_rng(seed)
    lines = []
    invoice = 0
    for g in range(groups):
        for c in range(per_group):
            customer = 10_000 + g * per_group + c
            order = rng.permutation(products)
            before, after = order[:5], rng.choice(products, 4, replace=False)
            for i, part in enumerate(np.array_split(before, 3)):
                invoice += 1
                at = START + dt.timedelta(days=int(rng.integers(0, 240)), hours=i)
                for p in part:
                    lines.append((f"{invoice}", customer, f"G{g}-{p:02d}", at, 1.0 + c % 7))
            invoice += 1
            at = SPLIT + dt.timedelta(days=int(rng.integers(0, 80)))
            for p in after:
                lines.append((f"{invoice}", customer, f"G{g}-{p:02d}", at, 2.0))
    return lines


def relations(con: duckdb.DuckDBPyConnection, lines):
    """int_order_products, int_evaluation_cuts, int_customer_rfm_at_cuts,
    int_recommendation_holdout and customer_rfm (its as_of_date) shaped relations of
    (invoice_no, customer_id, stock_code, invoiced_at, amount) sale lines."""
    invoices, customers, codes, times, amounts = (list(c) for c in zip(*lines, strict=True))
    table = pa.table(
        {
            "invoice_no": pa.array(invoices, pa.string()),
            "customer_id": pa.array(customers, pa.int64()),
            "stock_code": pa.array(codes, pa.string()),
            "invoiced_at": pa.array(times, pa.timestamp("us")),
            "amount": pa.array(amounts, pa.float64()),
        }
    )
    con.register("lines", table)
    order_products = con.sql(
        """select invoice_no, stock_code, customer_id, invoiced_at, customer_id is null as is_guest,
            count(*) as lines, count(*) as items, sum(amount) as amount
        from lines group by all"""
    )
    split, as_of = SPLIT.date().isoformat(), AS_OF.isoformat()
    cuts = con.sql(
        f"""select 'recommendation_holdout' as cut_kind, date '{split}' as cut_date,
            date '{as_of}' as as_of_date, 90 as horizon_days"""
    )
    rfm_at_cuts = con.sql(
        f"""select date '{split}' as cut_date, customer_id,
            date_diff('day', cast(max(invoiced_at) as date), date '{split}') as recency_days,
            count(distinct invoice_no) as frequency, sum(amount) as monetary
        from lines where invoiced_at < date '{split}' group by customer_id"""
    )
    holdout = con.sql(
        f"""with before as (
            select distinct customer_id, stock_code from lines
            where invoiced_at < date '{split}'),
        after as (
            select distinct customer_id, stock_code from lines
            where invoiced_at >= date '{split}' and invoiced_at < date '{as_of}'
              and customer_id in (select customer_id from before)),
        flagged as (
            select after.*, before.customer_id is not null as is_reorder from after
            left join before using (customer_id, stock_code))
        select *,
            count(*) filter (where not is_reorder) over (partition by customer_id)
                as new_products,
            count(*) filter (where is_reorder) over (partition by customer_id)
                as reordered_products,
            count(*) over (partition by customer_id) as holdout_products
        from flagged"""
    )
    rfm = con.sql(f"select date '{as_of}' as as_of_date, 1 as customer_id")
    return order_products, cuts, rfm_at_cuts, holdout, rfm


def evaluation(lines) -> dict[str, dict]:
    con = duckdb.connect()
    order_products, cuts, rfm_at_cuts, holdout, _ = relations(con, lines)
    table = recommend.recommendation_evaluation(
        con, order_products, cuts, rfm_at_cuts, holdout, 10, validate_settings()
    )
    return {row["method"]: row for row in table.to_pylist()}


def test_holdout_split_dates_and_var_checks():
    con = duckdb.connect()
    _, cuts, _, _, _ = relations(con, planted_lines(groups=1, per_group=2))
    split = recommend.holdout_split(cuts)
    assert split.test_start_date == SPLIT.date()
    assert split.train_end_date == dt.date(2011, 9, 10)
    assert split.test_end_date == dt.date(2011, 12, 9)
    assert split.holdout_days == 90
    with pytest.raises(ValueError, match="one recommendation_holdout cut"):
        recommend.holdout_split(
            con.sql("select 'segment_backtest' as cut_kind, 1 as cut_date, 2 as as_of_date")
        )
    with pytest.raises(ValueError, match="recommendations_n"):
        recommend.checked_n(101)


def test_item_item_recovers_planted_purchases_far_better_than_popularity():
    rows = evaluation(planted_lines())
    assert set(rows) == set(recommend.METHODS) | set(REORDER_METHODS)
    item, popular = rows["item_item"], rows["global_popularity"]
    assert item["customers_evaluated"] == popular["customers_evaluated"] > 200
    assert item["recall_at_k"] > 0.9
    assert item["recall_at_k"] > 3 * popular["recall_at_k"]
    assert item["ndcg_at_k"] > 3 * popular["ndcg_at_k"]
    assert rows["ease"]["recall_at_k"] > 3 * popular["recall_at_k"]
    selected = [m for m, r in rows.items() if r["is_selected"] and r["list_kind"] == "new"]
    assert selected in (["item_item"], ["als"], ["ease"])


def training_of(lines) -> recommenders.Interactions:
    con = duckdb.connect()
    order_products, cuts, _, _, _ = relations(con, lines)
    return recommend.interactions(
        con, order_products, recommend.holdout_split(cuts).test_start_date
    )


def assert_same_training(a: recommenders.Interactions, b: recommenders.Interactions):
    assert np.array_equal(a.customer_ids, b.customer_ids)
    assert a.stock_codes.equals(b.stock_codes)
    assert (a.orders != b.orders).nnz == 0


def test_holdout_purchases_never_reach_training():
    # (the holdout's targets and the RFM at the split are SQL models, tested by their dbt
    # unit tests on the same edges)
    base = planted_lines()
    customer = base[0][1]
    holdout = [line for line in base if line[1] == customer and line[3] >= SPLIT]
    added = [
        *base,
        ("new-1", customer, "G5-00", SPLIT, 9.0),
        ("new-2", customer, "G5-01", SPLIT + dt.timedelta(days=89, hours=23), 9.0),
    ]
    removed = [line for line in base if line not in holdout]
    moved = [
        (i, c, s, SPLIT + dt.timedelta(days=85), a)
        if (i, c, s, t, a) in holdout
        else (i, c, s, t, a)
        for i, c, s, t, a in base
    ]
    reference = training_of(base)
    for variant in (added, removed, moved):
        assert_same_training(training_of(variant), reference)


def test_a_line_on_the_split_is_tested_and_one_a_second_before_is_trained():
    base = planted_lines()
    customer = base[0][1]
    on_split = ("edge-1", customer, "G3-01", SPLIT, 5.0)
    before = ("edge-2", customer, "G4-02", SPLIT - dt.timedelta(seconds=1), 5.0)
    train = training_of([*base, on_split, before])
    codes = train.stock_codes.to_pylist()
    row = int(np.searchsorted(train.customer_ids, customer))
    bought = {codes[p] for p in train.orders[row].indices}
    assert "G4-02" in bought and "G3-01" not in bought


def test_two_runs_give_identical_tables(monkeypatch):
    # the second run on 3 cores and blocks of 11 entries: the work shared out differently
    # (threads.side_by_side) gives the identical tables
    lines = planted_lines(groups=4, per_group=30)
    first_evaluation = evaluation(lines)
    tables = []
    for run in range(2):
        if run:
            monkeypatch.setattr(threads_module, "usable_cores", lambda: 3)
            monkeypatch.setattr(recommenders, "usable_cores", lambda: 3)
            monkeypatch.setattr(recommend, "EVALUATION_CHUNK_WORKERS", 3)
            monkeypatch.setattr(recommenders, "ENTRIES_PER_BLOCK", 11)
            assert evaluation(lines) == first_evaluation
        con = duckdb.connect()
        order_products, cuts, _, _, rfm = relations(con, lines)
        rfm = con.sql(f"select distinct customer_id, date '{AS_OF}' as as_of_date from lines")
        customer_products = con.sql(
            """select customer_id, stock_code, min(invoiced_at) as first_purchased_at
            from lines group by all"""
        )
        segments = con.sql(
            "select distinct customer_id, 1 + customer_id % 3 as segment_id from lines"
        )
        products = con.sql(
            "select distinct stock_code, 'P ' || stock_code as description from lines"
        )
        for method in recommend.METHODS:
            chosen = con.sql(
                f"select '{method}' as method, 'new' as list_kind, true as is_selected"
            )
            tables.append(
                recommend.customer_recommendations(
                    con, order_products, customer_products, rfm, segments, products, chosen, 5
                ).to_arrow_table()
            )
        for method in REORDER_METHODS:
            chosen = con.sql(
                f"select '{method}' as method, 'reorder' as list_kind, true as is_selected"
            )
            tables.append(
                recommend.customer_reorder_recommendations(
                    con, order_products, rfm, cuts, chosen, 5
                )
            )
    new_tables = len(recommend.METHODS)
    per_run = new_tables + len(REORDER_METHODS)
    # 120 customers, at least 6 unbought and 5 bought products each
    assert all(t.num_rows == 120 * 5 for t in tables)
    for first, second in zip(tables[:per_run], tables[per_run:], strict=True):
        assert first.equals(second)


def test_metrics_on_a_hand_computed_case():
    # customer 0: top 3 = products 0, 1, 2; new products 1 and 5 and one unknown to training
    # customer 1: top 3 = product 3 only; new product 3
    recommended = np.array([[0, 1, 2], [3, -1, -1]])
    relevant = sp.csr_matrix(np.array([[0, 1, 0, 0, 0, 1], [0, 0, 0, 1, 0, 0]]))
    m = recommenders.ranking_metrics(recommended, relevant, np.array([3, 1]), 3, 6)
    ideal0 = 1 + 1 / math.log2(3) + 1 / 2
    assert m.customers == 2
    assert m.precision == pytest.approx((1 / 3 + 1 / 3) / 2)
    assert m.recall == pytest.approx((1 / 3 + 1) / 2)
    assert m.hit_rate == 1.0
    assert m.ndcg == pytest.approx(((1 / math.log2(3)) / ideal0 + 1) / 2)
    assert m.coverage == pytest.approx(4 / 6)


def test_top_n_breaks_ties_by_the_tie_order_and_skips_bought_products():
    scores = np.array([[1.0, 2.0, 2.0, 0.0]])
    bought = sp.csr_matrix(np.array([[0, 0, 0, 1]]))
    products, values = recommenders.top_n(scores, bought, np.array([2, 1, 0, 3]), 4)
    assert products.tolist() == [[2, 1, 0, -1]]
    assert values[0, :3].tolist() == [2.0, 2.0, 1.0]


def test_marts_on_the_sample(sample_build):
    rows = sample_build.df("select * from marts.recommendation_evaluation order by method")
    assert sorted(rows["method"]) == sorted(recommend.METHODS + REORDER_METHODS)
    assert rows.groupby("list_kind")["is_selected"].sum().to_dict() == {"new": 1, "reorder": 1}
    [as_of] = sample_build.query("select distinct as_of_date from marts.customer_rfm")
    split = recommend.split_at(as_of[0] - dt.timedelta(days=90), as_of[0])
    dates = sample_build.query(
        "select distinct train_end_date, test_start_date, test_end_date, as_of_date"
        " from marts.recommendation_evaluation"
    )
    assert dates == [(split.train_end_date, split.test_start_date, split.test_end_date, as_of[0])]
    assert (rows["customers_evaluated"] > 0).all()
    # every list is scored on the same customers for all items
    assert rows["customers_evaluated_all_items"].nunique() == 1
    [(already_bought, most, methods)] = sample_build.query(
        """select
            (select count(*) from marts.customer_recommendations as r
             inner join intermediate.int_customer_products as p
                on r.customer_id = p.customer_id and r.stock_code = p.stock_code
             inner join marts.customer_rfm as c on r.customer_id = c.customer_id
             where p.first_purchased_at < c.as_of_date),
            (select max(n) from (select count(*) as n from marts.customer_recommendations
                                 group by customer_id)),
            (select list(distinct method) from marts.customer_recommendations)"""
    )
    assert already_bought == 0
    assert most <= 10
    selected = rows.loc[rows["is_selected"]].set_index("list_kind")["method"]
    assert methods == [selected["new"]]
    # the re-order list: only products the customer bought before as_of_date, at most 10, and
    # every customer with such a product has a list
    [(not_bought, most, customers, buyers)] = sample_build.query(
        """select
            (select count(*) from marts.customer_reorder_recommendations as r
             anti join (select p.customer_id, p.stock_code
                        from intermediate.int_customer_products as p
                        inner join marts.customer_rfm as c on p.customer_id = c.customer_id
                        where p.first_purchased_at < c.as_of_date and not p.is_guest) as b
                on r.customer_id = b.customer_id and r.stock_code = b.stock_code),
            (select max(n) from (select count(*) as n from marts.customer_reorder_recommendations
                                 group by customer_id)),
            (select count(distinct customer_id) from marts.customer_reorder_recommendations),
            (select count(distinct customer_id) from marts.customer_rfm where customer_id > 0)"""
    )
    assert not_bought == 0 and most <= 10 and customers == buyers > 0


def test_top_n_matches_a_full_stable_sort_with_many_ties():
    rng = np.random.default_rng(5)
    scores = rng.integers(0, 4, (300, 50)).astype(np.float64)
    bought = sp.csr_matrix(rng.random((300, 50)) < 0.3)
    tie = rng.permutation(50)
    products, values = recommenders.top_n(scores, bought, tie, 10)
    ordered = scores[:, tie].copy()
    ordered[bought[:, tie].toarray()] = -np.inf
    expected = tie[np.argsort(-ordered, axis=1, kind="stable")[:, :10]]
    assert np.array_equal(products, expected)
    assert np.array_equal(values, np.take_along_axis(scores, expected, axis=1))


def test_pruned_similarity_keeps_the_nearest_neighbours(monkeypatch):
    lines = planted_lines(groups=4, per_group=30)
    dense = evaluation(lines)
    monkeypatch.setattr(recommenders, "DENSE_SIMILARITY_PRODUCTS", 10)
    monkeypatch.setattr(recommenders, "NEIGHBOURS", 14)  # a group's other products: nothing lost
    assert evaluation(lines)["item_item"] == dense["item_item"]


def test_small_batches_and_blocks_give_the_same_results(monkeypatch):
    # customers straddling two fetched batches, the matrix read in many ranges of customers,
    # and whole-matrix products summed over many blocks of customers, must give what one
    # batch, one range and one block give
    lines = planted_lines(groups=4, per_group=30)
    whole = evaluation(lines)
    inputs = training_of(lines)
    monkeypatch.setattr(recommend, "BATCH_ROWS", 7)
    monkeypatch.setattr(recommend, "ROWS_PER_PART", 13)
    monkeypatch.setattr(recommenders, "ENTRIES_PER_BLOCK", 11)
    batched = training_of(lines)
    assert_same_training(inputs, batched)
    assert np.array_equal(batched.orders.indptr, inputs.orders.indptr)
    assert evaluation(lines) == whole


def test_the_evaluation_runs_on_a_deterministic_sample_of_customers(monkeypatch):
    lines = planted_lines()  # 240 customers
    monkeypatch.setattr(recommend, "EVALUATION_CUSTOMERS", 100)
    rows = evaluation(lines)
    item, popular = rows["item_item"], rows["global_popularity"]
    assert 0 < item["customers_evaluated"] <= 100
    assert item["recall_at_k"] > 3 * popular["recall_at_k"]
    con = duckdb.connect()
    order_products, _, _, _, _ = relations(con, lines)
    sample = recommend.evaluation_sample(con, order_products).fetchnumpy()["customer_id"]
    assert len(sample) == 100
    assert set(sample) < {line[1] for line in lines}
    assert evaluation(lines) == rows


def test_at_most_scored_customers_are_ranked_a_deterministic_sample(monkeypatch):
    lines = planted_lines()  # 240 customers
    whole = evaluation(lines)
    assert whole["item_item"]["customers_evaluated"] > 60
    monkeypatch.setattr(recommend, "SCORED_CUSTOMERS", 60)
    rows = evaluation(lines)
    assert {r["customers_evaluated_all_items"] for r in rows.values()} == {60}
    assert {r["customers_evaluated"] for r in rows.values() if r["list_kind"] == "new"} == {60}
    # the planted structure still shows on the scored sample, and the sample is the same
    assert rows["item_item"]["recall_at_k"] > 3 * rows["global_popularity"]["recall_at_k"]
    assert evaluation(lines) == rows


def test_no_line_before_the_split_gives_an_empty_training_matrix():
    lines = [line for line in planted_lines(groups=1, per_group=5) if line[3] >= SPLIT]
    train = training_of(lines)
    assert train.orders.shape == (0, 0)
    assert len(train.customer_ids) == 0
    rows = evaluation(lines)
    assert {r["customers_evaluated"] for r in rows.values()} == {0}
    assert [m for m, r in rows.items() if r["is_selected"]] == ["global_popularity", "most_ordered"]


def test_als_factors_do_not_depend_on_the_number_of_threads(monkeypatch):
    # implicit solves each customer's and product's factors on its own: one thread, two and
    # every core give the same scores, to the bit (recommenders.ALS_THREADS relies on it)
    rng = np.random.default_rng(3)
    orders = sp.random(3_000, 200, density=0.05, format="csr", random_state=rng, dtype=np.float64)
    orders.data = rng.integers(1, 5, size=orders.nnz).astype(np.int32)
    orders = sp.csr_matrix(orders, dtype=np.int32)
    orders.sort_indices()
    train = recommenders.Interactions(
        np.arange(3_000, dtype=np.int64), pa.array([f"P{i:03d}" for i in range(200)]), orders
    )
    rows = np.arange(3_000)
    scores = []
    for threads in (1, 2, 0):
        monkeypatch.setattr(recommenders, "ALS_THREADS", threads)
        scores.append(recommenders.als(train)(rows, np.zeros(3_000, dtype=np.int64)))
    assert np.abs(scores[0]).max() > 0
    assert np.array_equal(scores[0], scores[1]) and np.array_equal(scores[0], scores[2])


def test_als_runs_on_every_usable_core(monkeypatch):
    # num_threads=0 would leave implicit on the one OpenMP thread single_threaded sets for the
    # calling thread: the number of usable cores is passed instead
    from implicit.cpu import als as implicit_als

    seen = []
    original = implicit_als.AlternatingLeastSquares.__init__

    def spy(self, *args, **kwargs):
        seen.append(kwargs["num_threads"])
        original(self, *args, **kwargs)

    monkeypatch.setattr(implicit_als.AlternatingLeastSquares, "__init__", spy)
    monkeypatch.setattr(recommenders, "usable_cores", lambda: 3)
    orders = sp.csr_matrix(np.array([[1, 0, 2], [0, 1, 1], [3, 1, 0]], dtype=np.int32))
    train = recommenders.Interactions(
        np.arange(3, dtype=np.int64), pa.array(["A", "B", "C"]), orders
    )
    recommenders.als(train)
    monkeypatch.setattr(recommenders, "ALS_THREADS", 1)
    recommenders.als(train)
    assert seen == [3, 1]


def test_customer_ranges_cover_every_customer_once_in_order(monkeypatch):
    con = duckdb.connect()
    # customer c holds c rows: 1 + 2 + ... + 10 = 55 rows
    lines = con.sql("select c as customer_id from range(1, 11) r(c), range(10) s(i) where i < c")
    assert recommend.customer_ranges(lines) == (["true"], 55)
    monkeypatch.setattr(recommend, "ROWS_PER_PART", 12)
    filters, rows = recommend.customer_ranges(lines)
    assert rows == 55
    parts = [lines.filter(f).aggregate("customer_id").fetchnumpy()["customer_id"] for f in filters]
    assert sorted(c for part in parts for c in part) == list(range(1, 11))
    assert [max(part) for part in parts] == sorted(max(part) for part in parts)
    # rows held up to each customer: 1, 3, 6, 10, 15, 21, 28, 36, 45, 55; a range starts at
    # the customer whose rows pass 12, 24, 36 and 48: customers 5, 7, 9 and 10
    assert [sorted(part.tolist()) for part in parts] == [[1, 2, 3, 4], [5, 6], [7, 8], [9], [10]]


def test_ease_matches_a_brute_force_solve_column_by_column():
    # EASE's closed form against the constrained ridge regression it solves: for each product
    # j, min ||X_j - X b||^2 + lambda ||b||^2 with b_j = 0, solved on the other columns
    rng = np.random.default_rng(11)
    x = (rng.random((40, 9)) < 0.35).astype(np.float64)
    penalty = 3.0
    weights = recommenders.ease_weights((x.T @ x).astype(np.int32), penalty)
    for j in range(x.shape[1]):
        others = [i for i in range(x.shape[1]) if i != j]
        a = x[:, others]
        solved = np.linalg.solve(a.T @ a + penalty * np.eye(len(others)), a.T @ x[:, j])
        assert weights[j, j] == 0.0
        assert np.allclose(weights[others, j], solved, atol=1e-10)
    # the scorer: the customers' purchases times B, every product kept
    orders = sp.csr_matrix(x.astype(np.int32))
    train = recommenders.Interactions(
        np.arange(40, dtype=np.int64), pa.array([f"P{i}" for i in range(9)]), orders
    )
    monkey = recommenders.EASE_REGULARIZATION
    try:
        recommenders.EASE_REGULARIZATION = penalty
        scores = recommenders.ease(train)(np.arange(40), np.zeros(40, dtype=np.int64))
    finally:
        recommenders.EASE_REGULARIZATION = monkey
    assert np.allclose(scores, x @ weights)


def test_ease_keeps_the_most_popular_products_above_its_limit(monkeypatch):
    rng = np.random.default_rng(2)
    x = (rng.random((60, 12)) < np.linspace(0.1, 0.6, 12)).astype(np.int32)
    train = recommenders.Interactions(
        np.arange(60, dtype=np.int64), pa.array([f"P{i:02d}" for i in range(12)]), sp.csr_matrix(x)
    )
    monkeypatch.setattr(recommenders, "EASE_PRODUCTS", 5)
    kept = np.sort(np.argsort(-x.sum(axis=0), kind="stable")[:5])
    scores = recommenders.ease(train)(np.arange(60), np.zeros(60, dtype=np.int64))
    dropped = np.setdiff1d(np.arange(12), kept)
    assert (scores[:, dropped] == 0).all()
    sub = x[:, kept].astype(np.float64)
    expected = sub @ recommenders.ease_weights((sub.T @ sub).astype(np.int32), 200.0)
    assert np.allclose(scores[:, kept], expected)


def reorder_lines(customers: int = 200, seed: int = 13):
    """Planted re-ordering: every customer orders every 14 to 28 days; each of 20 favourites of
    their own (among 400 products) is in every order while it is in favour, a span of 60 to
    150 days starting anywhere in the year, and never again after; each order adds one product
    drawn by popularity. Favours come and go: the products ordered most in the past are not
    those in favour after the split."""
    rng = np.random.default_rng(seed)
    popular = [f"P{i:03d}" for i in range(400)]
    weights = 1.0 / np.arange(1, 401)
    weights /= weights.sum()
    lines, invoice = [], 0
    for c in range(customers):
        customer = 30_000 + c
        own = [popular[i] for i in rng.choice(400, 20, replace=False)]
        begin = rng.integers(-100, 330, 20)
        end = begin + rng.integers(60, 151, 20)
        every = int(rng.integers(14, 29))
        day = int(rng.integers(0, every))
        while START + dt.timedelta(days=day) < dt.datetime(2011, 12, 9):
            at = START + dt.timedelta(days=day, hours=int(rng.integers(0, 8)))
            basket = {popular[int(rng.choice(400, p=weights))]}
            basket |= {code for code, b, e in zip(own, begin, end, strict=True) if b <= day < e}
            invoice += 1
            lines += [(f"R{invoice}", customer, code, at, 2.0) for code in sorted(basket)]
            day += every
    return lines


def test_planted_reordering_the_reorder_list_beats_popularity_by_far():
    rows = evaluation(reorder_lines())
    popular, reorder = rows["global_popularity"], rows["reorder_timing"]
    frequent = rows["most_ordered"]
    # scored on the same customers, every product bought after the split
    assert reorder["customers_evaluated_all_items"] == popular["customers_evaluated_all_items"]
    assert popular["customers_evaluated_all_items"] >= 190
    assert reorder["recall_at_k_all_items"] > 4 * popular["recall_at_k_all_items"]
    assert reorder["precision_at_k_all_items"] > 4 * popular["precision_at_k_all_items"]
    assert reorder["hit_rate_at_k_all_items"] > 0.95 > 0.8 > popular["hit_rate_at_k_all_items"]
    # favours come and go: how recently and how regularly a product was ordered tells which
    # are in favour, the count of past orders does not
    assert reorder["recall_at_k"] > 0.85
    assert reorder["recall_at_k"] > frequent["recall_at_k"] + 0.3
    assert reorder["is_selected"] and not frequent["is_selected"]


def test_the_reorder_mart_lists_the_products_in_favour():
    lines = reorder_lines(customers=40)
    con = duckdb.connect()
    order_products, cuts, _, _, _ = relations(con, lines)
    rfm = con.sql(f"select distinct customer_id, date '{AS_OF}' as as_of_date from lines")
    chosen = con.sql(
        "select 'reorder_timing' as method, 'reorder' as list_kind, true as is_selected"
    )
    table = recommend.customer_reorder_recommendations(con, order_products, rfm, cuts, chosen, 4)
    assert set(table.column("method").to_pylist()) == {"reorder_timing"}
    assert table.column("rank").to_pylist() == [1, 2, 3, 4] * 40
    scores = np.array(table.column("score").to_pylist()).reshape(40, 4)
    assert (np.diff(scores, axis=1) <= 0).all()
    # in favour: in the customer's last order
    last = {}
    for _invoice, customer, code, at, _ in lines:
        if customer not in last or at > last[customer][0]:
            last[customer] = (at, set())
        if at == last[customer][0]:
            last[customer][1].add(code)
    listed = zip(
        table.column("customer_id").to_pylist(), table.column("stock_code").to_pylist(), strict=True
    )
    in_favour = [code in last[customer][1] for customer, code in listed]
    assert sum(in_favour) >= 0.9 * len(in_favour)
    # every pair ordered before as_of_date is a candidate, with its orders
    lines_of = recommend.customer_order_products(order_products)
    features = reorders.pair_features(lines_of, AS_OF, reorders.popularity(lines_of, AS_OF))
    pairs = {(c, s) for _, c, s, _, _ in lines}
    assert features.aggregate("count(*)").fetchall() == [(len(pairs),)]
    [(orders,)] = features.aggregate("sum(orders)").fetchall()
    assert orders == len({(i, c, s) for i, c, s, _, _ in lines})
