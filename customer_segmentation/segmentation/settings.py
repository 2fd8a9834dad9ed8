"""The segmentation vars (segment_k_min, segment_k_max, segment_k, segment_features), checked
again in Python."""

from __future__ import annotations

from dataclasses import dataclass

from customer_segmentation import var_spec

# From the dbt vars' spec (macros/var_spec.sql), like validate_settings' checks.
ALLOWED_FEATURES = tuple(var_spec.SPEC["segment_features"]["choices"])
DEFAULT_FEATURES = tuple(var_spec.default("segment_features"))
K_LIMITS = tuple(var_spec.SPEC["segment_k"]["range"])


@dataclass(frozen=True)
class SegmentSettings:
    """Validated segmentation settings (the dbt vars segment_k_min/_max, segment_k, _features)."""

    k_min: int
    k_max: int
    k_fixed: int | None
    features: tuple[str, ...]


def validate_settings(
    k_min: object = var_spec.default("segment_k_min"),
    k_max: object = var_spec.default("segment_k_max"),
    k_fixed: object = var_spec.default("segment_k"),
    features: object = DEFAULT_FEATURES,
) -> SegmentSettings:
    """Check the segmentation vars again in Python, as dbt did; raise ValueError naming the var."""
    values = {"segment_k_min": k_min, "segment_k_max": k_max, "segment_k": k_fixed}
    values["segment_features"] = features
    for name, value in values.items():
        var_spec.check(name, value, values)
    fixed = None if k_fixed is None else int(k_fixed)  # type: ignore[arg-type]
    return SegmentSettings(int(k_min), int(k_max), fixed, tuple(features))  # type: ignore[arg-type]
