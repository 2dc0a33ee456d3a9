"""Exit non-zero unless every stage of a pipeline has a finished artefact under an artefact root.

Usage: python scripts/check_artefacts.py ARTEFACT_ROOT [PIPELINE]   (default PIPELINE: pipeline.yaml)

Finished means what the engine means: `<root>/<stage>/<key>/_manifest.json` exists, and its own `stage`
and `key` name that directory. `make image` (scripts/build_image.sh) runs it inside the built image after
the smoke run, so that an image whose pipeline fails or writes nowhere is not reported as built.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

from pix2point.engine.artefacts import MANIFEST, ArtefactStore


def pipeline_stages(pipeline: Path) -> list[str]:
    return list(yaml.safe_load(pipeline.read_text())["stages"])


def unfinished_stages(root: Path, stages: list[str]) -> dict[str, str]:
    """Stage name -> what is wrong, for every stage without a consistent finished artefact under `root`."""
    store = ArtefactStore(root)
    problems = {}
    for stage in stages:
        keys = store.complete_keys(stage)
        if not keys:
            problems[stage] = f"no {stage}/<key>/{MANIFEST} under {store.root}"
            continue
        for key in keys:
            manifest = store.manifest(stage, key)
            if (manifest.get("stage"), manifest.get("key")) != (stage, key):
                problems[stage] = f"{store.path(stage, key) / MANIFEST} names stage={manifest.get('stage')!r} key={manifest.get('key')!r}"
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("pipeline", type=Path, nargs="?", default=Path("pipeline.yaml"))
    args = parser.parse_args()
    stages = pipeline_stages(args.pipeline)
    problems = unfinished_stages(args.root, stages)
    for stage, problem in problems.items():
        print(f"[check_artefacts] {stage}: {problem}", file=sys.stderr)
    if problems:
        raise SystemExit(1)
    print(f"[check_artefacts] all {len(stages)} stages finished under {args.root}: {', '.join(stages)}")


if __name__ == "__main__":
    main()
