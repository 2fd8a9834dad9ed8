"""The segments as readable eligibility rules: a shallow decision tree fitted to reproduce the
KMeans segments from the features in original units, one rule per leaf.

Each split's threshold is written as a number a reader can use and that gives exactly the
tree's answer for every customer of the table: the tree compares float32 copies of the values
with a float64 midpoint, the rule compares the exact values (integers, or decimals in SQL) with
a number chosen between the largest value the tree sends left and the smallest it sends right.
A rule is a SQL condition on customer_rfm's columns (`true` for a tree of one leaf).
Method: docs/backtest.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from customer_segmentation.segmentation.clustering import RANDOM_STATE
from customer_segmentation.segmentation.tables import as_arrow, repeat_date, sorted_customers
from customer_segmentation.segmentation.threads import import_modules, single_threaded

if TYPE_CHECKING:
    import pandas as pd

MAX_DEPTH = 3
TREE_MODULES = ("sklearn.tree",)
# Decimals of money thresholds when they fit between the two sides of a split.
MONEY_DECIMALS = 2

RULES_SCHEMA = pa.schema(
    [
        ("rule_id", pa.int32()),
        ("segment_id", pa.int32()),
        ("segment_name", pa.string()),
        ("rule", pa.string()),
        ("customers_matched", pa.int64()),
        ("customers_in_segment", pa.int64()),
        ("precision", pa.float64()),
        ("recall", pa.float64()),
        ("agreement", pa.float64()),
        ("features", pa.string()),
        ("as_of_date", pa.date32()),
    ]
)


@dataclass(frozen=True)
class Bound:
    """One side of a split on a feature, in original units: `<op> <number>`."""

    feature: str
    op: str  # "<=", "<", ">=", ">"
    value: Decimal | int | float

    def text(self) -> str:
        value = self.value
        shown = f"{value}" if not isinstance(value, float) else repr(value)
        return f"{self.feature} {self.op} {shown}"


@dataclass(frozen=True)
class RulesTree:
    """The fitted tree, its inputs in customer_id order and each customer's leaf."""

    tree: object  # sklearn.tree.DecisionTreeClassifier
    features: tuple[str, ...]
    customer_ids: np.ndarray
    segment_id: np.ndarray
    values: pa.Table  # the feature columns in customer_id order, original types
    x32: np.ndarray  # what the tree sees
    leaf: np.ndarray  # node id of each customer's leaf


def fit_rules_tree(segments: pa.Table | pd.DataFrame, features: Sequence[str]) -> RulesTree:
    """DecisionTreeClassifier(max_depth=3) of segment_id on the features in original units,
    fitted on every customer in customer_id order (fixed random_state, one thread)."""
    import_modules(*TREE_MODULES)
    from sklearn.tree import DecisionTreeClassifier

    table = as_arrow(segments)
    ids, order = sorted_customers(table)
    missing = [f for f in features if f not in table.column_names]
    if missing:
        raise ValueError(f"customer_segments has no column {missing[0]!r} (a segment feature)")
    values = table.select(list(features)).take(pa.array(order))
    for name in features:
        if values.column(name).null_count:
            raise ValueError(f"customer_segments.{name} has null values")
    x32 = np.column_stack(
        [values.column(f).cast(pa.float64()).to_numpy() for f in features]
    ).astype(np.float32)
    segment_id = table.column("segment_id").cast(pa.int32()).to_numpy()[order]
    tree = DecisionTreeClassifier(max_depth=MAX_DEPTH, random_state=RANDOM_STATE)
    with single_threaded(*TREE_MODULES):
        tree.fit(x32, segment_id)
        leaf = tree.apply(x32)
    return RulesTree(tree, tuple(features), ids, segment_id, values, x32, leaf)


def _split_bounds(fitted: RulesTree, node: int) -> tuple[Bound, Bound]:
    """The (left, right) conditions of a split node, exact on every customer of the table."""
    tree = fitted.tree.tree_  # type: ignore[attr-defined]
    f, t = int(tree.feature[node]), float(tree.threshold[node])
    name = fitted.features[f]
    left = fitted.x32[:, f] <= t  # exactly the comparison the tree makes
    column = fitted.values.column(name)
    low = pc.max(column.filter(pa.array(left))).as_py()  # largest value sent left
    high = pc.min(column.filter(pa.array(~left))).as_py()  # smallest value sent right
    kind = column.type
    if pa.types.is_integer(kind):
        cut = int(np.floor(t))
        cut = cut if low <= cut < high else int(low)
        return Bound(name, "<=", cut), Bound(name, ">=", cut + 1)
    if pa.types.is_decimal(kind):
        step = Decimal(1).scaleb(-MONEY_DECIMALS)
        options = [
            Decimal(repr(t)).quantize(step, rounding=ROUND_HALF_UP),
            (low + step / 2).quantize(step, rounding=ROUND_CEILING),
            low + Decimal(1).scaleb(-kind.scale),
        ]
        cut = next(c for c in options if low < c <= high)
        return Bound(name, "<", cut), Bound(name, ">=", cut)
    return Bound(name, "<=", float(low)), Bound(name, ">", float(low))


def _tighter(old: Bound | None, new: Bound) -> Bound:
    if old is None:
        return new
    upper = new.op in ("<", "<=")
    keep_new = new.value < old.value if upper else new.value > old.value  # type: ignore[operator]
    return new if keep_new else old


def leaf_rules(fitted: RulesTree) -> dict[int, str]:
    """Node id -> the rule of each leaf: its path, one lower and one upper bound per feature
    at most, in the order of the features."""
    tree = fitted.tree.tree_  # type: ignore[attr-defined]
    rules: dict[int, str] = {}

    def walk(node: int, bounds: dict[tuple[str, bool], Bound]) -> None:
        left_child, right_child = int(tree.children_left[node]), int(tree.children_right[node])
        if left_child < 0:
            parts = [
                bounds[(f, side)].text()
                for f in fitted.features
                for side in (False, True)
                if (f, side) in bounds
            ]
            rules[node] = " and ".join(parts) if parts else "true"
            return
        left, right = _split_bounds(fitted, node)
        for child, bound in ((left_child, left), (right_child, right)):
            key = (bound.feature, bound.op in ("<", "<="))
            walk(child, {**bounds, key: _tighter(bounds.get(key), bound)})

    walk(0, {})
    return rules


def segment_rules(segments: pa.Table | pd.DataFrame, features: Sequence[str]) -> pa.Table:
    """segment_rules: one row per leaf of the tree, with the segment it predicts, the customers
    it matches, its precision and recall, and the tree's agreement with the segments."""
    table = as_arrow(segments)
    fitted = fit_rules_tree(table, features)
    tree = fitted.tree.tree_  # type: ignore[attr-defined]
    classes = fitted.tree.classes_  # type: ignore[attr-defined]
    rules = leaf_rules(fitted)
    names = {
        int(s): str(n)
        for s, n in zip(
            table.column("segment_id").to_pylist(),
            table.column("segment_name").to_pylist(),
            strict=True,
        )
    }
    segment_sizes = {int(s): int(np.count_nonzero(fitted.segment_id == s)) for s in classes}
    rows = []
    for node in sorted(rules):  # node ids: depth-first, left before right
        members = fitted.segment_id[fitted.leaf == node]
        # the tree's prediction: the most frequent segment of the leaf, a tie to the lower id
        predicted = int(classes[int(np.argmax(tree.value[node][0]))])
        correct = int(np.count_nonzero(members == predicted))
        rows.append(
            {
                "segment_id": predicted,
                "segment_name": names[predicted],
                "rule": rules[node],
                "customers_matched": len(members),
                "customers_in_segment": correct,
                "precision": correct / len(members),
                "recall": correct / segment_sizes[predicted],
            }
        )
    agreement = sum(r["customers_in_segment"] for r in rows) / len(fitted.segment_id)
    rows.sort(key=lambda r: (r["segment_id"], -r["customers_matched"], r["rule"]))
    as_of = repeat_date(table, 1)[0].as_py() if len(table) else None
    for i, row in enumerate(rows, start=1):
        row.update(rule_id=i, agreement=agreement, features=",".join(features), as_of_date=as_of)
    return pa.Table.from_pylist(rows, schema=RULES_SCHEMA)


def predicted_segments(fitted: RulesTree) -> np.ndarray:
    """The tree's segment for each customer (customer_id order), as sklearn predicts it."""
    with single_threaded(*TREE_MODULES):
        return fitted.tree.predict(fitted.x32)  # type: ignore[attr-defined]
