"""Compare a committed results page with a freshly written one (scripts/check_results.sh):

    python -m pix2point.engine.results_diff docs/results/default.md /tmp/fresh/default.md

Prints the differing lines as a unified diff and exits 1 when the pages differ in anything but what two runs of
one commit cannot share (engine/report.comparable_lines: the commit, machine and recorded-command lines and
every duration); exits 0, saying so, when they agree; 2 when a page is missing.
"""

from __future__ import annotations

import difflib
import sys
from pathlib import Path

from pix2point.engine.report import comparable_lines


def page_differences(committed: str, fresh: str, committed_name: str = "committed", fresh_name: str = "fresh"
                     ) -> list[str]:
    """Unified-diff lines between the two pages' comparable lines; empty when they agree."""
    return list(difflib.unified_diff(comparable_lines(committed), comparable_lines(fresh), committed_name,
                                     fresh_name, lineterm="", n=0))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print("usage: python -m pix2point.engine.results_diff COMMITTED_PAGE FRESH_PAGE", file=sys.stderr)
        return 2
    committed, fresh = map(Path, argv)
    for page in (committed, fresh):
        if not page.is_file():
            print(f"error: {page}: no such results page", file=sys.stderr)
            return 2
    differences = page_differences(committed.read_text(), fresh.read_text(), str(committed), str(fresh))
    if differences:
        print("\n".join(differences))
        print(f"{committed} and {fresh} differ (commit, machine and times aside): "
              f"{sum(line.startswith('-') and not line.startswith('---') for line in differences)} line(s)")
        return 1
    print(f"{committed} and {fresh} agree (commit, machine and times aside)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
