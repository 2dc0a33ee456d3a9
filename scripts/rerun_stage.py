"""Re-run the stage that made an artefact into a new root and diff the rerun's tables and weights against it.

Usage: python scripts/rerun_stage.py ARTEFACT NEW_ROOT

ARTEFACT is `<root>/<stage>/<key>`; its manifest gives the stage module and resolved params, and its input
artefacts are read from the same root under the keys the manifest names. The rerun is written as
`NEW_ROOT/<stage>/<key>` (with its own manifest; the key is the original's, so the two sit side by side in
a comparison, whatever the code is now). Exit status: 0 when every table (timing and memory columns aside)
and every weight file is bit-identical, 1 when something differs (each difference printed), 2 when the
artefact or one of its inputs is missing or unreadable. Bit-identical reruns need `deterministic: true`
on training stages and the same machine, torch and MinkowskiEngine build.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path

from pix2point.engine.artefacts import MANIFEST, ArtefactStore
from pix2point.engine.pipeline import validate_params
from pix2point.engine.runner import call_stage
from pix2point.io.artefact_diff import diff_artefacts


def rerun(artefact: Path, new_root: Path) -> Path:
    """Run the artefact's stage again with its params and inputs; returns the new artefact's directory.
    Raises FileNotFoundError naming what is missing."""
    manifest_path = artefact / MANIFEST
    if not manifest_path.is_file():
        raise FileNotFoundError(f"{manifest_path}: no manifest, so {artefact} is not a finished artefact")
    manifest = json.loads(manifest_path.read_text())
    stage, key, root = manifest["stage"], manifest["key"], artefact.resolve().parent.parent
    inputs = {name: input_artefact(root, name, input_key, artefact) for name, input_key in manifest["inputs"].items()}
    module = importlib.import_module(manifest["module"])
    params = validate_params(stage, module.Params, manifest["params"])
    store = ArtefactStore(new_root)
    with store.writing(stage, key) as temporary:
        metrics = call_stage(module, params, inputs, temporary, lambda: store.scratch(stage, key)) or {}
        store.commit(temporary, stage, key, {**manifest, "metrics": metrics, "rerun_of": str(artefact.resolve())})
    store.remove_scratch(stage, key)
    return store.path(stage, key)


def input_artefact(root: Path, name: str, key: str, artefact: Path) -> Path:
    """The finished artefact with `key` under `root`: `<root>/<name>/<key>`, or, for an input the pipeline
    renamed (the manifest records the name the stage reads), the one stage directory holding that key."""
    candidates = [root / name / key, *sorted(root.glob(f"*/{key}"))]
    for path in candidates:
        if (path / MANIFEST).is_file():
            return path
    raise FileNotFoundError(f"input {name!r} of {artefact}: no finished artefact with key {key} under {root}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("artefact", type=Path, help="<root>/<stage>/<key> to reproduce")
    parser.add_argument("new_root", type=Path, help="artefact root for the rerun")
    args = parser.parse_args(argv)
    try:
        rerun_dir = rerun(args.artefact, args.new_root)
    except FileNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    differences = diff_artefacts(args.artefact, rerun_dir)
    for difference in differences:
        print(difference)
    verdict = f"{len(differences)} difference(s)" if differences else "identical tables and weights"
    print(f"{args.artefact} vs rerun {rerun_dir}: {verdict}")
    return 1 if differences else 0


if __name__ == "__main__":
    sys.exit(main())
