#!/usr/bin/env bash
# Does a fresh run reproduce the committed results page (issue 22)? Runs the pipeline into a new, empty
# artefact root (what `make run` does in a fresh clone), writes its page with `pix2point report` into a
# temporary folder and compares it with docs/results/<profile>.md, commit, machine and times aside
# (pix2point.engine.results_diff). Prints the differing lines; exits 1 on any difference.
#
#   scripts/check_results.sh [PROFILE] [--artefacts DIR] [--page PAGE]
#
#   PROFILE          default (the default) or a profile of pipeline.yaml, e.g. smoke
#   --artefacts DIR  take the artefacts of a finished run from DIR instead of running the pipeline
#   --page PAGE      compare with PAGE instead of docs/results/<PROFILE>.md
#
# Environment: PYTHON, the interpreter with pix2point installed (default: .venv/bin/python, else python3).
# The pipeline's code is this checkout's: a tracked file changed since its commit shows on the fresh page's
# commit line, which is not compared.
set -euo pipefail

cd "$(dirname "$0")/.."
profile=default
artefacts=""
page=""
while [ $# -gt 0 ]; do
    case "$1" in
        --artefacts) artefacts="$2"; shift 2 ;;
        --page) page="$2"; shift 2 ;;
        -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
        -*) echo "error: unknown option $1 (see --help)" >&2; exit 2 ;;
        *) profile="$1"; shift ;;
    esac
done
page="${page:-docs/results/${profile}.md}"
if [ -z "${PYTHON:-}" ]; then
    if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
if [ ! -f "$page" ]; then
    echo "error: $page: no committed results page to compare with (pix2point report --profile $profile writes it)" >&2
    exit 2
fi
profile_options=()
if [ "$profile" != default ]; then profile_options=(--profile "$profile"); fi

work="$(mktemp -d "${TMPDIR:-/tmp}/check-results.XXXXXX")"
trap 'rm -rf "$work"' EXIT
if [ -z "$artefacts" ]; then
    artefacts="$work/artefacts"
    echo "running the $profile profile into a fresh artefact root $artefacts"
    "$PYTHON" -m pix2point run "${profile_options[@]}" --artefacts "$artefacts"
fi
"$PYTHON" -m pix2point report "${profile_options[@]}" --artefacts "$artefacts" --out "$work/results"
"$PYTHON" -m pix2point.engine.results_diff "$page" "$work/results/${profile}.md"
