"""The run's log file takes what the console must not show, up to the end of the run (issue 15.1)."""

import subprocess
import sys
import textwrap

LEFT_OPEN = textwrap.dedent("""
    import sys
    from pathlib import Path
    from tqdm import tqdm
    from pix2point.engine.runlog import quiet_console

    with quiet_console(Path(sys.argv[1])) as console:
        left_open = tqdm(total=4, desc="a bar left open")  # as Ray keeps one on the driver per remote bar
        left_open.update(4)
        print("inside", file=console, flush=True)
    print("after", flush=True)
""")


def test_a_progress_bar_left_open_ends_in_the_log_not_on_the_console_at_exit(tmp_path):
    """The smoke run's console ended with Ray Data's bars, printed when the interpreter exited."""
    log = tmp_path / "run.log"
    done = subprocess.run([sys.executable, "-c", LEFT_OPEN, str(log)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert (done.stdout, done.stderr) == ("inside\nafter\n", "")
    assert "a bar left open: 100%" in log.read_text()


TWO_STAGES = textwrap.dedent("""
    import logging, sys, textwrap
    from pathlib import Path
    from pix2point.engine.artefacts import ArtefactStore
    from pix2point.engine.pipeline import load_pipeline
    from pix2point.engine.runlog import quiet_console
    from pix2point.engine.runner import run_pipeline

    root = Path(sys.argv[1])
    (root / "twins_stages").mkdir()
    (root / "twins_stages" / "__init__.py").write_text("")
    (root / "twins_stages" / "twin.py").write_text(textwrap.dedent('''
        import logging, threading, contextvars
        from pydantic import BaseModel

        class Params(BaseModel):
            loss: float

        def run(params, inputs, out):
            # as training/runtime/progress.py's relay does: a thread started with a copy of the stage's context
            line = lambda: logging.getLogger("pix2point.training.runtime.progress").info("i2pmae: step 1/1, loss %s", params.loss)
            thread = threading.Thread(target=contextvars.copy_context().run, args=(line,))
            thread.start()
            thread.join()
            (out / "done").touch()
    '''))
    (root / "pipeline.yaml").write_text(textwrap.dedent('''
        stages:
          pretrain_mae: {module: twins_stages.twin, params: {loss: 36.8}}
          pretrain_i2p_mae: {module: twins_stages.twin, params: {loss: 0.77}}
    '''))
    sys.path.insert(0, str(root))
    with quiet_console(root / "run.log"):
        run_pipeline(load_pipeline(root / "pipeline.yaml"), ArtefactStore(root / "artefacts"))
""")


def test_stages_side_by_side_say_whose_training_line_is_whose(tmp_path):
    """Piped output (`ray job logs`) has no live view: two I2P-MAE pretrainings both log `i2pmae: step ...`."""
    done = subprocess.run([sys.executable, "-c", TWO_STAGES, str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    for text in (done.stdout, (tmp_path / "run.log").read_text()):
        assert "pretrain_mae: i2pmae: step 1/1, loss 36.8" in text and "pretrain_i2p_mae: i2pmae: step 1/1, loss 0.77" in text
        assert "stage pretrain_mae (key" in text and "pretrain_mae: stage pretrain_mae" not in text  # the engine's lines as they were
