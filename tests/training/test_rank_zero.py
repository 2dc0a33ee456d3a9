"""Validation on rank 0 only (issue 13.1): `distributed.on_rank_zero` computes on rank 0 and every rank gets
its result, in a real two-process gloo group (what Ray Train sets up for CPU workers)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

WORKER = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    import torch.distributed as dist
    from pix2point.training.runtime.distributed import on_rank_zero

    rank, world, init_file, calls = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], Path(sys.argv[4])
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)

    def validate():
        (calls / f"rank{rank}").touch()  # which ranks computed it
        return {"miou": 0.25 + rank, "confusion": [[rank, 1], [2, 3]]}

    print(json.dumps(on_rank_zero(validate)), flush=True)
    dist.barrier()
    dist.destroy_process_group()
""")


def test_validation_runs_on_rank_zero_alone_and_every_rank_gets_its_result(tmp_path):
    calls = tmp_path / "calls"
    calls.mkdir()
    workers = [subprocess.Popen([sys.executable, "-c", WORKER, str(rank), "2", str(tmp_path / "init"), str(calls)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for rank in range(2)]
    outputs = [worker.communicate(timeout=300) for worker in workers]
    for worker, (stdout, stderr) in zip(workers, outputs):
        assert worker.returncode == 0, stderr
    assert sorted(path.name for path in calls.iterdir()) == ["rank0"]
    assert [json.loads(stdout.strip().splitlines()[-1]) for stdout, _ in outputs] == \
        [{"miou": 0.25, "confusion": [[0, 1], [2, 3]]}] * 2
