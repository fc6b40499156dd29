"""The run directory writer (`pinnkit.report.RunDirectory`, DESIGN.md §6): the metrics log cut
back to the checkpoint on resume, atomic summaries, the partial summary of a stopped run,
the shared summary keys, and checkpoints written as folders with ``meta.json`` last."""

import json
import os
import signal

import pytest
import yaml
from test_trainer import small_spec

import pinnkit
from pinnkit.errors import SpecError
from pinnkit.report import Progress, RunDirectory, run_header
from pinnkit.train.checkpoint import Checkpointer


def steps_of(run: RunDirectory) -> list:
    return [row["step"] for row in run.history()]


def entry(step, phase="adam"):
    return {"step": step, "phase": phase, "loss": 1.0 / step}


def write_log(run, steps, **kw):
    with run.open_log(total=100, name="t", progress=False, **kw) as log:
        for s in steps:
            log(entry(s))


def test_resume_cuts_the_log_back_to_the_checkpoint_step(tmp_path):
    run = RunDirectory(tmp_path / "run")
    run.create()
    write_log(run, [10, 20, 30, 40, 50])
    # killed after step 50 with the last checkpoint at step 30: steps 40 and 50 are redone
    Checkpointer(run.checkpoint).save({"w": 0.0}, {"step": 30, "phase": 0})
    write_log(run, [40, 50, 60], resume=True)
    assert steps_of(run) == [10, 20, 30, 40, 50, 60]
    # an explicit step (a run whose checkpoint counts in other units) wins over meta.json
    write_log(run, [30, 40], resume=True, resume_step=20)
    assert steps_of(run) == [10, 20, 30, 40]


def test_resume_drops_a_last_line_cut_short(tmp_path):
    run = RunDirectory(tmp_path / "run")
    run.create()
    write_log(run, [1, 2])
    with open(run.metrics_path, "a") as f:
        f.write('{"step": 3, "ph')  # killed mid-line
    write_log(run, [3], resume=True, resume_step=2)
    assert steps_of(run) == [1, 2, 3]
    assert all(json.loads(line) for line in run.metrics_path.read_text().splitlines())


def test_a_fresh_run_starts_a_new_log_and_drops_an_old_checkpoint(tmp_path):
    run = RunDirectory(tmp_path / "run")
    run.create()
    write_log(run, [1, 2, 3])
    Checkpointer(run.checkpoint).save({"w": 0.0}, {"step": 3, "phase": 0})
    run.create(resume=False)
    assert run.checkpoint_meta() is None
    write_log(run, [1])
    assert steps_of(run) == [1]


def test_the_log_feeds_the_callback_and_is_closed_on_error(tmp_path):
    run = RunDirectory(tmp_path / "run")
    seen = []

    class Killed(Exception):
        pass

    def log(e):
        seen.append(e["step"])
        if e["step"] == 2:
            raise Killed

    with pytest.raises(Killed):
        write_log(run, [1, 2, 3], log=log)
    assert seen == [1, 2] and steps_of(run) == [1, 2]  # the row is written before the callback


def test_summary_is_written_atomically(tmp_path, monkeypatch):
    run = RunDirectory(tmp_path / "run")
    run.create()
    run.write_summary({"status": "ok", "steps": 10})

    def killed(src, dst):
        raise KeyboardInterrupt  # a kill between writing the new file and moving it

    monkeypatch.setattr(os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        run.write_summary({"status": "ok", "steps": 20})
    monkeypatch.undo()
    assert run.read_summary() == {"status": "ok", "steps": 10}
    assert sorted(p.name for p in run.path.iterdir()) == ["summary.json"]  # no temporary left


def test_partial_summary_takes_its_steps_from_the_checkpoint(tmp_path):
    run = RunDirectory(tmp_path / "run")
    run.create()
    header = run_header("p", "mlp", "interrupted", "float32", 0)
    assert run.write_partial(header, "stopped")["steps"] == 0  # no checkpoint yet
    Checkpointer(run.checkpoint).save({"w": 0.0}, {"step": 28, "phase": 0})
    run.write_partial(header, "interrupted at step 28; continue with --resume")
    summary = run.read_summary()
    assert summary["status"] == "interrupted" and summary["steps"] == 28
    assert summary["message"].startswith("interrupted at step 28")
    run.write_partial({**header, "status": "diverged"}, "non-finite", steps=7)
    assert run.read_summary()["status"] == "diverged" and run.read_summary()["steps"] == 7


def test_header_keys():
    header = run_header("poisson", "mlp", "ok", "float64", 3)
    assert set(header) == {
        "problem",
        "backend",
        "status",
        "device",
        "dtype",
        "seed",
        "pinnkit_version",
        "python",
        "jax_version",
    }
    assert header["pinnkit_version"] == pinnkit.__version__
    assert header["device"].startswith("cpu:") or ":" in header["device"]
    assert (header["problem"], header["backend"], header["status"]) == ("poisson", "mlp", "ok")
    assert (header["dtype"], header["seed"]) == ("float64", 3)


def test_spec_and_run_json(tmp_path):
    run = RunDirectory(tmp_path / "run")
    with pytest.raises(SpecError, match="not a pinnkit run directory"):
        run.check_resumable()
    run.write_spec({"name": "p", "train": {"steps": 5}}, base_dir=tmp_path)
    assert yaml.safe_load(run.spec_path.read_text()) == {"name": "p", "train": {"steps": 5}}
    assert run.base_dir() == str(tmp_path.resolve())
    with pytest.raises(SpecError, match="checkpoint"):
        run.check_resumable()
    Checkpointer(run.checkpoint).save({"w": 0.0}, {"step": 1, "phase": 0})
    run.check_resumable()


def test_a_checkpoint_folder_survives_a_kill_mid_write(tmp_path):
    run = RunDirectory(tmp_path / "run")
    run.create()

    def level(n):
        def write(folder):
            (folder / "a.txt").write_text(f"level {n}")
            (folder / "b.txt").write_text(f"level {n}")

        return write

    run.save_checkpoint_folder("levels-1", level(1), {"levels": 1, "step": 10})

    def killed(folder):
        (folder / "a.txt").write_text("level 2")
        raise KeyboardInterrupt  # b.txt never written

    with pytest.raises(KeyboardInterrupt):
        run.save_checkpoint_folder("levels-2", killed, {"levels": 2, "step": 20})
    folder = run.checkpoint_folder()
    assert folder.name == "levels-1" and run.checkpoint_meta()["step"] == 10
    assert (folder / "a.txt").read_text() == (folder / "b.txt").read_text() == "level 1"
    run.save_checkpoint_folder("levels-2", level(2), {"levels": 2, "step": 20})
    assert run.checkpoint_folder().name == "levels-2"
    assert sorted(p.name for p in run.checkpoint.iterdir()) == ["levels-2", "meta.json"]


def test_progress_prints_one_line_per_entry(capsys):
    bar = Progress(60, "p", enabled=True)
    bar({"step": 7, "phase": "adam", "loss": 0.5, "errors": {"u": {"rel_l2": 0.01}}})
    bar.close()
    err = capsys.readouterr().err
    assert "[p] step 7/60 adam" in err and "u rel.L2 1.00e-02" in err
    Progress(60, "p", enabled=False)({"step": 1, "phase": "adam", "loss": 1.0})
    assert capsys.readouterr().err == ""


def test_pinnkit_report_stays_the_function_after_the_plots_load():
    import pinnkit.report.plots  # noqa: F401

    assert callable(pinnkit.report)


# --- through `solve` -----------------------------------------------------------------------


def test_a_resumed_run_logs_each_step_once(tmp_path):
    """A run killed between checkpoints logged steps past its checkpoint; the resumed run
    trains them again, and metrics.jsonl holds each step once, in order (issue 16)."""
    spec = small_spec(checkpoint_every=20)
    out = tmp_path / "run"

    class Killed(BaseException):
        pass

    def kill_at_35(e):
        if e["step"] == 35:
            raise Killed  # as a kill: no checkpoint written at step 35

    with pytest.raises(Killed):
        pinnkit.solve(spec, out=out, progress=False, log=kill_at_35)
    run = RunDirectory(out)
    assert run.checkpoint_meta()["step"] == 21  # the chunk that crossed step 20
    assert steps_of(run)[-1] == 35
    resumed = pinnkit.solve(None, resume=out, progress=False)
    steps = steps_of(run)
    assert steps == sorted(set(steps)) and steps[0] == 7 and steps[-1] == 60
    assert [e["step"] for e in resumed.record.history] == steps
    assert 35 in steps  # trained again after the cut


def test_an_interrupted_run_writes_its_partial_summary_through_solve(tmp_path):
    def interrupt_at_14(e):
        if e["step"] == 14:
            os.kill(os.getpid(), signal.SIGINT)

    out = tmp_path / "run"
    with pytest.raises(pinnkit.InterruptedRun):
        pinnkit.solve(small_spec(), out=out, progress=False, log=interrupt_at_14)
    summary = RunDirectory(out).read_summary()
    assert summary["status"] == "interrupted" and summary["steps"] == 14
    assert set(run_header("p", "b", "s", "d", 0)) <= set(summary)


def _cli(*args, **kw):
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "pinnkit.cli", *map(str, args)]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def test_a_run_killed_by_sigkill_resumes_with_each_step_logged_once(tmp_path):
    """SIGKILL (no handler runs) between checkpoints: the log holds steps past the
    checkpoint; ``--resume`` cuts them and trains them again, so each step is listed once."""
    import time

    spec = small_spec(checkpoint_every=200, log_every=10)
    spec["train"].pop("phases")
    spec["train"].update(optimizer={"name": "adam", "schedule": "constant"}, steps=10**7)
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    out = tmp_path / "run"
    proc = _cli("solve", path, "--out", out, "--quiet")
    run = RunDirectory(out)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        meta = (out / "checkpoint" / "meta.json").exists() and run.checkpoint_meta()
        if meta and run.metrics_path.exists():
            logged = steps_of(run)
            if logged and logged[-1] > meta["step"] + 30:
                break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    at = run.checkpoint_meta()["step"]
    assert steps_of(run)[-1] > at  # rows the checkpoint does not cover
    end = at + 100
    resumed = _cli("solve", "--resume", out, "--set", f"train.steps={end}", "--quiet")
    _, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err[-2000:]
    steps = steps_of(run)
    assert steps == sorted(set(steps)) and steps[-1] == end


@pytest.mark.parametrize("damage", ["no_run", "meta_not_json", "meta_no_step", "state_cut"])
def test_resume_refuses_a_folder_that_is_not_a_whole_run(tmp_path, damage):
    out = tmp_path / "run"
    if damage == "no_run":
        out.mkdir()
        (out / "notes.txt").write_text("not a run")
    else:
        pinnkit.solve(small_spec(checkpoint_every=20), out=out, progress=False)
        meta = out / "checkpoint" / "meta.json"
        if damage == "meta_not_json":
            meta.write_text('{"step": 4')
        elif damage == "meta_no_step":
            meta.write_text('{"state": "x"}')
        else:
            state = out / "checkpoint" / json.loads(meta.read_text())["state"]
            state.write_bytes(state.read_bytes()[:50])
    with pytest.raises(SpecError) as info:
        pinnkit.solve(None, resume=out, progress=False)
    assert info.value.path == "--resume"
    proc = _cli("solve", "--resume", out, "--quiet")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2 and "Traceback" not in err, err[-2000:]
