"""The segmentation vars (segment_k_min, segment_k_max, segment_k, segment_features), checked
again in Python."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

ALLOWED_FEATURES = (
    "recency_days",
    "frequency",
    "monetary",
    "gross_revenue",
    "returned_amount",
    "avg_order_value",
    "total_items",
    "distinct_products",
    "return_lines",
    "tenure_days",
)
DEFAULT_FEATURES = ("recency_days", "frequency", "monetary")
K_LIMITS = (2, 20)


@dataclass(frozen=True)
class SegmentSettings:
    """Validated segmentation settings (the dbt vars segment_k_min/_max, segment_k, _features)."""

    k_min: int
    k_max: int
    k_fixed: int | None
    features: tuple[str, ...]


def _check_k(name: str, value: object, allow_none: bool = False) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ValueError(
            f"dbt var '{name}' must be a whole number from {K_LIMITS[0]} to {K_LIMITS[1]}"
            f"{' or null' if allow_none else ''}, got {value!r}"
        )
    if not K_LIMITS[0] <= int(value) <= K_LIMITS[1]:
        raise ValueError(
            f"dbt var '{name}' must be from {K_LIMITS[0]} to {K_LIMITS[1]}, got {value!r}"
        )
    return int(value)


def validate_settings(
    k_min: object = 2,
    k_max: object = 10,
    k_fixed: object = None,
    features: object = DEFAULT_FEATURES,
) -> SegmentSettings:
    """Check the segmentation vars again in Python; raise ValueError naming the var."""
    lo = _check_k("segment_k_min", k_min)
    hi = _check_k("segment_k_max", k_max)
    fixed = _check_k("segment_k", k_fixed, allow_none=True)
    assert lo is not None and hi is not None
    if hi < lo:
        raise ValueError(f"dbt var 'segment_k_max' ({hi}) must be at least segment_k_min ({lo})")
    if isinstance(features, str) or not isinstance(features, Sequence) or not features:
        raise ValueError(
            f"dbt var 'segment_features' must be a non-empty list of customer_rfm columns "
            f"from {', '.join(ALLOWED_FEATURES)}, got {features!r}"
        )
    for feature in features:
        if feature not in ALLOWED_FEATURES:
            raise ValueError(
                f"dbt var 'segment_features': {feature!r} is not one of "
                f"{', '.join(ALLOWED_FEATURES)}"
            )
    if len(set(features)) != len(features):
        raise ValueError(f"dbt var 'segment_features' must not repeat a feature: {features!r}")
    return SegmentSettings(lo, hi, fixed, tuple(str(f) for f in features))
