"""Customer segmentation for online retail: data generation and ingestion helpers."""
