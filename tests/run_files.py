"""Run each test file in its own pytest process, ``--jobs`` at a time (what ``make test`` does).

    python tests/run_files.py [--jobs 2] [--marks "not slow"] [FILES ...] -- [PYTEST ARGS ...]

Why a process per file: one pytest process that compiled every program of the suite crashed
natively inside XLA's compiler late in the run (a segfault, then an abort, in tests that pass
on their own); a process per file bounds what one process accumulates. Why two at a time: most
of the suite's programs are small and use one core, and CI has two. The reference-problem files
(the long ones) start first so the two queues finish together. Each file's output is printed
whole when it finishes; the exit status is 0 when every file passed (or had nothing selected).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import pathlib
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
NO_TESTS = 5  # pytest's exit code when the marks select nothing in a file
LONG = {
    "tests/test_notebooks.py",
    "tests/test_trainer.py",
    "tests/test_gliodil.py",
    "tests/test_battery.py",
}  # long unit files that start early (the regression files all run first)


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = []
    if "--" in argv:
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1 :]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--marks", default="not slow")
    parser.add_argument("files", nargs="*")
    args = parser.parse_args(argv)
    files = args.files or (
        sorted(str(p.relative_to(ROOT)) for p in (ROOT / "tests/regression").glob("test_*.py"))
        + sorted(
            (str(p.relative_to(ROOT)) for p in (ROOT / "tests").glob("test_*.py")),
            key=lambda f: (f not in LONG, f),
        )
    )
    pytest = [sys.executable, "-m", "pytest", "-m", args.marks, *extra]

    def run(path: str):
        start = time.perf_counter()
        done = subprocess.run(
            [*pytest, path], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        return path, done.returncode, done.stdout, time.perf_counter() - start

    failed, start = [], time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        for path, code, output, seconds in pool.map(run, files):
            print(f"== {path}: exit {code}, {seconds:.0f} s\n{output}", flush=True)
            if code not in (0, NO_TESTS):
                failed.append(path)
    total = time.perf_counter() - start
    if failed:
        print(f"FAILED ({total:.0f} s): {' '.join(failed)}")
        return 1
    print(f"every test file passed ({len(files)} files, {total:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
