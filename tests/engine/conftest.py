"""A toy two-stage pipeline, written per test into its own importable package, to exercise the engine;
an S3 protocol server on loopback (moto) for object-store artefact roots."""

from __future__ import annotations

import importlib
import logging
import os
import sys
import textwrap
import uuid
from pathlib import Path

import pyarrow.fs as pafs
import pytest

NUMBERS_STAGE = '''
"""Writes 0..count-1; optionally fails or sleeps after writing, to test interrupted runs; can log its runs."""
import os
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid")
    count: int = 5
    fail_after_write: bool = False
    sleep_after_write: float = 0.0
    record_runs_to: str | None = None  # a file outside the artefact that gets one line per run


def run(params: Params, inputs: dict, out: Path) -> dict:
    if params.record_runs_to:
        with open(params.record_runs_to, "a") as record:
            record.write(f"{os.getpid()}\\n")
    pq.write_table(pa.table({"n": list(range(params.count))}), out / "numbers.parquet")
    if params.sleep_after_write:
        (out / "started").touch()
        time.sleep(params.sleep_after_write)
    if params.fail_after_write:
        raise RuntimeError("numbers stage failed on purpose")
    return {"rows": params.count}
'''

TOTAL_STAGE = '''
"""Sums the numbers artefact, times a scale; optionally fails."""
from pathlib import Path

import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict

from {package} import helper


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid")
    scale: int = 1
    fail: bool = False


def run(params: Params, inputs: dict, out: Path) -> dict:
    if params.fail:
        raise RuntimeError("total stage failed on purpose")
    numbers = pq.read_table(inputs["numbers"] / "numbers.parquet")["n"].to_pylist()
    total = helper.scaled_sum(numbers, params.scale)
    (out / "total.txt").write_text(str(total))
    return {{"total": total}}
'''

HELPER = '''
def scaled_sum(values, scale):
    return sum(values) * scale
'''

TRAIN_STAGE = '''
"""Ray Train with `workers` workers that chatter, warn and report progress; optionally reads a Parquet file in a
Ray task (`read`) or in every training worker (`read_in_worker`), to fail there, or takes `seconds_per_step` a
step (to be interrupted while it trains)."""
import time
import warnings
from pathlib import Path

import MinkowskiEngine  # noqa: F401  (its CPU-only warning, in the driver and in every worker)
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict

from pix2point.parallel import map_tasks
from pix2point.training.runtime.distributed import fit
from pix2point.training.runtime.progress import Progress


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid")
    steps: int = 3
    workers: int = 2
    read: str | None = None
    read_in_worker: str | None = None
    seconds_per_step: float = 0.0


def train_loop(config: dict) -> None:
    if config["read_in_worker"]:
        pq.read_metadata(config["read_in_worker"])
    progress = Progress("toy", config["steps"])
    for step in range(1, config["steps"] + 1):
        print("worker chatter", flush=True)
        warnings.warn("toy warning from a worker")
        time.sleep(config["seconds_per_step"])
        progress.report(step, loss=1.0 / step)


def run(params: Params, inputs: dict, out: Path, scratch: Path) -> dict:
    if params.read:
        map_tasks(pq.read_metadata, [params.read], desc="read")  # importable in any worker
    fit(train_loop, {"steps": params.steps, "read_in_worker": params.read_in_worker,
                     "seconds_per_step": params.seconds_per_step}, num_workers=params.workers, cpus_per_worker=1, use_gpu=False,
        storage=scratch, name="toy")
    (out / "trained.txt").write_text(str(params.steps))
    return {"steps": params.steps}
'''

REPORT_STAGE = '''
"""A result stage as the methods' evaluation stages write one: report.md with a table and a figure, metrics,
and a figure report.md does not show."""
from pathlib import Path

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str = "Toy result"


def plot(values, path):
    figure, axis = plt.subplots(figsize=(3, 2))
    axis.plot(values)
    figure.savefig(path, dpi=50)
    plt.close(figure)


def run(params: Params, inputs: dict, out: Path) -> dict:
    numbers = pq.read_table(inputs["numbers"] / "numbers.parquet")["n"].to_pylist()
    plot(numbers, out / "curve.png")
    plot(numbers[::-1], out / "unreferenced.png")
    (out / "report.md").write_text(
        f"# {params.title}\\n\\n| what | value |\\n| --- | --- |\\n| sum | {sum(numbers)} |\\n\\n![the curve [seed 0]](curve.png)\\n")
    return {"sum": sum(numbers), "scores": {"best": 0.75, "gain": -5.879490601712334e-05}}
'''

REPORT_PIPELINE = '''
stages:
  numbers:
    module: {package}.numbers
    params: {{count: 5}}
  result:
    module: {package}.result
    inputs: [numbers]
profiles:
  small:
    numbers: {{count: 2}}
'''

RAY_PIPELINE = '''
stages:
  numbers:
    module: {package}.numbers
    params: {{count: 5}}
  train:
    module: {package}.train
    inputs: [numbers]
    params: {{steps: 3, workers: 2}}
'''

PIPELINE = '''
stages:
  numbers:
    module: {package}.numbers
    params: {{count: 5}}
  total:
    module: {package}.total
    inputs: [numbers]
    params: {{scale: 1}}
profiles:
  small:
    numbers: {{count: 2}}
'''


class ToyProject:
    def __init__(self, root: Path):
        self.package = f"toy_stages_{uuid.uuid4().hex[:8]}"
        self.root = root
        self.package_dir = root / self.package
        self.package_dir.mkdir(parents=True)
        (self.package_dir / "__init__.py").write_text("")
        (self.package_dir / "numbers.py").write_text(NUMBERS_STAGE)
        (self.package_dir / "total.py").write_text(TOTAL_STAGE.format(package=self.package))
        (self.package_dir / "helper.py").write_text(HELPER)
        (self.package_dir / "train.py").write_text(TRAIN_STAGE)
        (self.package_dir / "result.py").write_text(REPORT_STAGE)
        self.pipeline = root / "pipeline.yaml"
        self.pipeline.write_text(textwrap.dedent(PIPELINE.format(package=self.package)))
        self.ray_pipeline = root / "ray_pipeline.yaml"  # numbers, then a Ray Train stage
        self.ray_pipeline.write_text(textwrap.dedent(RAY_PIPELINE.format(package=self.package)))
        # numbers, then a stage that writes report.md; named pipeline.yaml, whose pages are named by profile alone
        self.report_pipeline = root / "report" / "pipeline.yaml"
        self.report_pipeline.parent.mkdir()
        self.report_pipeline.write_text(textwrap.dedent(REPORT_PIPELINE.format(package=self.package)))
        self.artefacts = root / "artefacts"

    def cli(self, *args: str) -> tuple[list[str], dict[str, str]]:
        """Command and environment that run `pix2point` in a fresh process with this project importable."""
        command = [sys.executable, "-c", "import sys; from pix2point.cli import main; sys.exit(main(sys.argv[1:]))", *args]
        env = {**os.environ, "PYTHONPATH": f"{self.root}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
        return command, env

    def edit_helper(self, source: str) -> None:
        """Change code a stage imports; the engine must see it on the next key computation."""
        from pix2point.engine import keys

        (self.package_dir / "helper.py").write_text(source)
        keys.code_fingerprint.cache_clear()
        keys._source_path.cache_clear()
        importlib.invalidate_caches()
        importlib.reload(importlib.import_module(f"{self.package}.helper"))


@pytest.fixture
def toy(tmp_path: Path, monkeypatch) -> ToyProject:
    project = ToyProject(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield project
    for name in [name for name in sys.modules if name.startswith(project.package)]:
        del sys.modules[name]


@pytest.fixture(scope="session")
def s3_endpoint():
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one log line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3_root(s3_endpoint, monkeypatch) -> str:
    """A fresh bucket; the AWS environment variables a user would set point pyarrow at the server."""
    for name, value in {
        "AWS_ENDPOINT_URL": s3_endpoint, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true",
    }.items():
        monkeypatch.setenv(name, value)
    bucket = f"pix2point-{uuid.uuid4().hex[:8]}"
    pafs.S3FileSystem(endpoint_override=s3_endpoint, allow_bucket_creation=True).create_dir(bucket)
    return f"s3://{bucket}/artefacts"
