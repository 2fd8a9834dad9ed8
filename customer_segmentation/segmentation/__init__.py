"""Customer segmentation: KMeans on log-scaled RFM features with an honest model selection.

Called by the dbt Python models in ``python_models/`` (each a few lines); the modules take and
return Arrow tables and are unit-tested without dbt (tests/pytest/test_segmentation.py). The
method, the samples and the measurements behind them: docs/segmentation.md.

features (log1p, standardising, samples), clustering (KMeans, silhouettes, the comparison
methods), selection (the choice of k), segments (the final fit, ids, personas, silhouettes per
segment), value_tiers (1-D KMeans scores), settings (the vars), tables (Arrow in and out),
threads (one BLAS/OpenMP thread); asof (the RFM before a cut and the refit on it), rules (the
segments as decision-tree rules), backtest (the refit at an earlier date and what followed).
"""
