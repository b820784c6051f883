"""``RestApiSource``: a REST API declared in a ``defs.yaml``, as a Dagster Component.

The declaration's fields are ``RestApiSourceSpec``'s (``source.py``): the REST client's (where the
API is, auth, paginator, records, incremental) and the landing's (contract, key, write, schedule).
Each instance builds its extract asset, contract check, load asset, job and schedule
(``assets.build_rest_api_source``), over its own tables.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from .assets import build_rest_api_source
from .source import RestApiSourceSpec

# Works as written against the project's mock API (`ingest demo` and `ingest dev` start it, and set
# SOURCE_API_TOKEN); every line says what to change for another API.
SCAFFOLD = """\
# A REST API pulled on a schedule into ingestion.{name} (raw pages: ingestion.{name}_raw, records
# that cannot land: ingestion.{name}_rejects). Reference: docs/components.md#restapisource.
# As written it reads the project's mock API (/v1/records); secrets are named, never written here.
type: {type_name}

attributes:
  name: {name}
  base_url: "{{{{ env('SOURCE_API_URL', 'http://127.0.0.1:8000') }}}}"
  path: /v1/records
  # params: {{}}                       # static query parameters
  # headers: {{}}                      # static headers (no credentials: use auth)

  # bearer | api_key | basic | oauth2_client_credentials, each reading its secret from a variable.
  auth: {{type: bearer, token_env: SOURCE_API_TOKEN}}

  # cursor | next_url | link_header | offset | page_number | single_page
  paginator: {{type: cursor, cursor_header: X-Next-Cursor, cursor_param: cursor, limit_param: limit, limit: 10000}}
  records: {{format: ndjson}}         # or {{format: json, path: data.items}}

  # Only what changed since the last run: the newest cursor_field landed goes back in param.
  incremental: {{cursor_field: updated_at, param: updated_since, end_param: updated_before}}
  primary_key: id
  write: merge                       # merge: one row per id, latest updated_at wins; append: every version;
                                     # replace: no incremental, each run reads it whole and replaces the table
  # unknown_columns: keep            # also land fields outside the columns, as JSON in unknown_fields

  # The contract: a required column's nulls block the load; other fields are reported, not landed.
  columns:
    - {{name: id, type: bigint, required: true}}
    - {{name: name, type: varchar, required: true}}
    - {{name: email, type: varchar}}
    - {{name: amount, type: double}}
    - {{name: status, type: varchar}}
    - {{name: created_at, type: timestamptz}}
    - {{name: updated_at, type: timestamptz, required: true}}

  schedule: "0 0 * * *"              # cron, UTC
"""


class RestApiSourceScaffolder(dg.Scaffolder):
    """Writes a ``defs.yaml`` that works as written: the mock API's records, named after the folder."""

    def scaffold(self, request: dg.ScaffoldRequest) -> None:
        target = Path(request.target_path)
        target.mkdir(parents=True, exist_ok=True)
        name = target.name.lower().replace("-", "_")
        (target / "defs.yaml").write_text(SCAFFOLD.format(type_name=request.type_name, name=name))


@dg.scaffold_with(RestApiSourceScaffolder)
class RestApiSource(dg.Component, dg.Resolvable, RestApiSourceSpec):
    """A REST API pulled on a schedule: paged by its declared paginator, checked against its declared
    columns, upserted (or appended) into ingestion.<name> exactly once."""

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        return self.definitions()

    def definitions(self) -> dg.Definitions:
        """The instance's assets, check, job and schedule (also for a declaration from INGEST_SOURCES_FILE)."""
        return build_rest_api_source(self)
