"""``retention_job`` in a loop, as a process of its own beside the landing runs of a retention test.

``python retention_loop.py STOP_FILE``: runs the code location's ``retention_job`` (in process, on
the instance at ``$DAGSTER_HOME``, with the settings of the environment) again and again until
STOP_FILE exists; after each run it prints one JSON line: the iteration, whether it succeeded, and
the rows each store lost (the ops' ``*_deleted`` metadata).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import dagster as dg

from ingestion_patterns.definitions import defs


def main() -> None:
    stop = Path(sys.argv[1])
    job = defs().resolve_job_def("retention_job")
    with dg.DagsterInstance.get() as instance:
        iteration = 0
        while not stop.exists():
            result = job.execute_in_process(instance=instance, raise_on_error=False)
            removed: dict[str, int] = {}
            for event in result.all_events:
                if event.event_type_value == "STEP_OUTPUT":
                    for key, value in event.event_specific_data.metadata.items():  # type: ignore[union-attr]
                        if key.endswith("_deleted"):
                            removed[key] = value.value
            iteration += 1
            print(json.dumps({"iteration": iteration, "success": result.success, **removed}), flush=True)
            time.sleep(0.2)


if __name__ == "__main__":
    main()
