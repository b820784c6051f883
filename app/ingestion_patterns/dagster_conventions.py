"""What every pattern's Dagster definitions share: run retries and the table metadata the UI shows."""

from __future__ import annotations

from collections.abc import Iterable

import dagster as dg
import duckdb

from .warehouse import SCHEMA, Column, count_rows

# Every job: a failed run is retried by the daemon (run retries must be enabled in dagster.yaml),
# from the failed step on. Landing is idempotent (checkpoints in the data's transaction), so a
# retry never doubles a row; without it, a sensor's unchanged run key would never ask again.
RUN_RETRY_TAGS = {"dagster/max_retries": "3", "dagster/retry_strategy": "FROM_FAILURE"}

# A declared source's job says its kind and instance (docs/architecture.md, "Declared sources"): the
# one sensor of a kind finds its instances' jobs by these.
KIND_TAG = "ingestion/source-kind"
SOURCE_TAG = "ingestion/source"


def table_metadata(table: str, columns: Iterable[Column]) -> dict[str, str | dg.TableSchema]:
    """Definition metadata of an asset stored in ``ingestion.<table>``: its name and column schema."""
    return {
        "dagster/table_name": f"{SCHEMA}.{table}",
        "dagster/column_schema": dg.TableSchema(
            columns=[
                dg.TableColumn(
                    name=c.name, type=c.sql_type, constraints=dg.TableColumnConstraints(nullable=not c.not_null)
                )
                for c in columns
            ]
        ),
    }


def row_count_metadata(conn: duckdb.DuckDBPyConnection, table: str) -> dict[str, dg.MetadataValue]:
    """Materialization metadata: how many rows ``ingestion.<table>`` holds now."""
    return {"dagster/row_count": dg.MetadataValue.int(count_rows(conn, table))}
