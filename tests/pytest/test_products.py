"""The product layer on the real pipeline's tables, against pandas on fct_order_lines."""

from __future__ import annotations

import itertools

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from customer_segmentation import baskets
from customer_segmentation.baskets import pair_counts


def brute_force_pairs(orders: np.ndarray, products: np.ndarray, min_orders: int) -> dict:
    baskets: dict[int, set[int]] = {}
    for order, product in zip(orders.tolist(), products.tolist(), strict=True):
        baskets.setdefault(order, set()).add(product)
    counts: dict[tuple[int, int], int] = {}
    for basket in baskets.values():
        for pair in itertools.combinations(sorted(basket), 2):
            counts[pair] = counts.get(pair, 0) + 1
    return {pair: n for pair, n in counts.items() if n >= min_orders}


@pytest.mark.parametrize("dense_products", [40, 39], ids=["dense_total", "sparse_total"])
@pytest.mark.parametrize("min_orders", [1, 3])
def test_pair_counts_match_brute_force_whatever_the_chunks(min_orders, dense_products, monkeypatch):
    # 40 products: a dense running total up to DENSE_PRODUCTS = 40, a sparse one below
    monkeypatch.setattr(baskets, "DENSE_PRODUCTS", dense_products)
    rng = np.random.default_rng(3)
    drawn = zip(rng.integers(0, 400, 3_000), rng.zipf(1.6, 3_000) % 40, strict=True)
    rows = {(int(order), int(product)) for order, product in drawn}
    orders, products = (np.array(column) for column in zip(*sorted(rows), strict=True))
    expected = brute_force_pairs(orders, products, min_orders)
    whole = pair_counts([(orders, products)], 40, min_orders).to_pylist()
    got = {(r["product_index"], r["related_product_index"]): r["orders_together"] for r in whole}
    assert got == expected and len(got) > 50
    # chunks of whole orders (split by order parity) give the same table, row for row
    odd = orders % 2 == 1
    chunked = pair_counts(
        [(orders[odd], products[odd]), (orders[~odd], products[~odd])], 40, min_orders
    )
    assert chunked.to_pylist() == whole


def test_pair_counts_refuse_a_product_listed_twice_in_an_order():
    with pytest.raises(ValueError, match="lists a product twice"):
        pair_counts([(np.array([1, 1]), np.array([0, 0]))], 2, 1)


def test_product_pairs_cut_the_sorted_stream_between_orders(monkeypatch):
    # tiny batches and chunks: every chunk boundary falls inside the stream, never in an order
    rng = np.random.default_rng(4)
    drawn = zip(rng.integers(0, 300, 2_000), rng.zipf(1.6, 2_000) % 30, strict=True)
    rows = sorted({(f"inv-{order}", f"P{product:02d}") for order, product in drawn})
    con = duckdb.connect()
    invoices, codes = (list(column) for column in zip(*rows, strict=True))
    con.register("rows", pa.table({"invoice_no": invoices, "stock_code": codes}))
    order_products = con.sql("select * from rows")
    whole = baskets.product_pairs(con, order_products, 2)
    monkeypatch.setattr(baskets, "BATCH_ROWS", 7)
    monkeypatch.setattr(baskets, "ROWS_PER_CHUNK", 20)
    monkeypatch.setattr(baskets, "ROWS_PER_SORT", 500)
    assert baskets.product_pairs(con, order_products, 2).equals(whole)
    order_ids = np.array([int(i.split("-")[1]) for i in invoices])
    product_ids = np.array([int(c[1:]) for c in codes])
    expected = brute_force_pairs(order_ids, product_ids, 2)
    got = {
        (int(a[1:]), int(b[1:])): n
        for a, b, n in zip(*(whole.column(c).to_pylist() for c in whole.column_names), strict=True)
    }
    assert got == expected and len(got) > 50


@pytest.fixture(scope="module")
def lines(sample_build) -> pd.DataFrame:
    return sample_build.df("select * from marts.fct_order_lines")


def test_product_pairs_match_pandas_on_the_sample(sample_build, lines):
    sales = lines[lines["line_type"] == "sale"][["invoice_no", "stock_code"]].drop_duplicates()
    codes = np.sort(sales["stock_code"].unique())
    index = {code: i for i, code in enumerate(codes)}
    orders = sales["invoice_no"].astype("category").cat.codes.to_numpy()
    expected = brute_force_pairs(orders, sales["stock_code"].map(index).to_numpy(), 10)
    got = sample_build.query(
        "select stock_code, related_stock_code, orders_together from intermediate.int_product_pairs"
    )
    assert {(index[a], index[b]): n for a, b, n in got} == expected
    assert len(expected) > 50


def test_dim_products_match_pandas_on_the_sample(sample_build, lines):
    products = sample_build.df("select * from marts.dim_products").set_index("stock_code")
    sales = lines[lines["line_type"] == "sale"]
    grouped = sales.groupby("stock_code")
    assert set(products.index) == set(sales["stock_code"])
    np.testing.assert_array_equal(
        products["orders"].sort_index(), grouped["invoice_no"].nunique().sort_index()
    )
    customers = sales[~sales["is_guest"]].groupby("stock_code")["customer_id"].nunique()
    assert (products["customers"] == customers.reindex(products.index, fill_value=0)).all()
    revenue = grouped["line_amount"].sum().reindex(products.index)
    np.testing.assert_allclose(products["revenue"], revenue, rtol=1e-12)
    # exact: every sale line's amount is in exactly one product's revenue
    assert sample_build.query(
        "select (select sum(revenue) from marts.dim_products) "
        "= (select sum(line_amount) from marts.fct_order_lines where line_type = 'sale')"
    ) == [(True,)]
    returned = -lines[lines["line_type"] == "return"].groupby("stock_code")["quantity"].sum()
    rate = returned.reindex(products.index, fill_value=0) / grouped["quantity"].sum()
    np.testing.assert_allclose(products["return_rate"], rate.reindex(products.index), rtol=1e-12)
    # the canonical description: most frequent non-empty text, ties to the smallest
    texts = sales[sales["description"].fillna("").str.strip() != ""]
    counts = texts.groupby(["stock_code", "description"]).size().reset_index(name="n")
    best = counts.sort_values(["stock_code", "n", "description"], ascending=[True, False, True])
    best = best.drop_duplicates("stock_code").set_index("stock_code")["description"]
    assert (
        products["description"].dropna() == best.reindex(products["description"].dropna().index)
    ).all()
    median = grouped["unit_price"].median().reindex(products.index)
    np.testing.assert_allclose(products["median_unit_price"], median, rtol=1e-12)


def test_segment_top_products_match_pandas_on_the_sample(sample_build, lines):
    top = sample_build.df("select * from marts.segment_top_products where segment_kind = 'kmeans'")
    segments = sample_build.df("select customer_id, segment_id from marts.customer_segments")
    sales = lines[(lines["line_type"] == "sale") & lines["customer_id"].notna()]
    bought = (
        sales[["customer_id", "stock_code"]].drop_duplicates().merge(segments, on="customer_id")
    )
    per_segment = bought.groupby(["segment_id", "stock_code"]).size().rename("customers_buying")
    for row in top.itertuples():
        assert row.customers_buying == per_segment[(row.segment_id, row.stock_code)]
    # the first of each segment is bought by at least as many as any other product
    firsts = top[top["rank"] == 1].set_index("segment_id")["customers_buying"]
    assert (firsts == per_segment.groupby("segment_id").max().reindex(firsts.index)).all()
    sizes = segments.groupby("segment_id").size()
    assert (top["segment_customers"] == top["segment_id"].map(sizes)).all()
