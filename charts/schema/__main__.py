"""python -m charts.schema [--check] [CHART...]: write (or check) the charts' values.schema.json."""

from __future__ import annotations

import argparse
import difflib
import sys

from .generate import CHARTS, CHARTS_DIR, path, render


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m charts.schema", description=__doc__)
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 with a diff if a committed schema differs from the models",
    )
    parser.add_argument(
        "charts", nargs="*", metavar="CHART", help=f"charts to do (default: all of {', '.join(CHARTS)})"
    )
    args = parser.parse_args(argv)
    if unknown := sorted(set(args.charts) - set(CHARTS)):
        parser.error(f"unknown chart(s): {', '.join(unknown)}")
    stale = []
    for chart in args.charts or CHARTS:
        target, text = path(chart), render(chart)
        current = target.read_text() if target.is_file() else ""
        if current == text:
            continue
        if args.check:
            stale.append(chart)
            sys.stdout.writelines(
                difflib.unified_diff(
                    current.splitlines(keepends=True),
                    text.splitlines(keepends=True),
                    f"{target} (committed)",
                    f"{target} (generated)",
                )
            )
        else:
            target.write_text(text)
            print(f"wrote {target.relative_to(CHARTS_DIR.parent)}")
    if stale:
        print(f"stale: {', '.join(stale)}; regenerate with `uv run python -m charts.schema`", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
