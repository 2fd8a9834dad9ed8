"""dbt-duckdb plugin (profiles.yml, `plugins`): opens the build file with the project's
memory_limit, `DUCKDB_MEMORY_LIMIT` or a share of the machine's memory
(customer_segmentation.memory)."""

from __future__ import annotations

from typing import Any

from dbt.adapters.duckdb.plugins import BasePlugin

from customer_segmentation.memory import duckdb_memory_limit


class Plugin(BasePlugin):
    def initialize(self, plugin_config: dict[str, Any]) -> None:
        # DUCKDB_MEMORY_LIMIT as profiles.yml checked it ('' when unset)
        self.memory_limit = plugin_config.get("memory_limit") or None

    def update_connection_config(self, creds: Any, config: dict[str, Any]) -> None:
        config["memory_limit"] = duckdb_memory_limit(self.memory_limit)
