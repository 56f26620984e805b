"""``make bench``: run every ``bench/*_bench.py`` in turn and print their JSON lines, plus one for the machine.

Each benchmark runs in its own interpreter (so one's memory and threads never colour another's numbers) and
prints one JSON object per line on stdout; anything else it prints goes to stderr. ``--quick`` asks each for a
short run: benchmarks that take ``--quick`` get it, the others get the arguments in ``QUICK_ARGS``.
A benchmark that fails is reported as a JSON line with ``"error"`` and makes the exit status 1; a last
``"run"`` line gives the total time and the load average, since other work on the machine skews the numbers.
Usage: ``python bench/run.py [--quick] [--only NAME ...]`` (NAME as in ``api`` for ``api_bench.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
# Benchmarks without a --quick flag of their own, and what makes them short.
QUICK_ARGS = {"store_bench.py": ["--objects", "5000"]}


def machine() -> dict[str, Any]:
    sys.path.insert(0, str(HERE))
    from apiserver_harness import machine as describe

    return {"bench": "machine", **describe(), "sqlite": sqlite3.sqlite_version,
            "date": time.strftime("%Y-%m-%d %H:%M:%S %z")}


def benchmarks(only: list[str]) -> list[Path]:
    found = sorted(HERE.glob("*_bench.py"))
    if only:
        found = [p for p in found if p.name.removesuffix("_bench.py") in only or p.name in only]
    return found


def quick_args(path: Path) -> list[str]:
    if path.name in QUICK_ARGS:
        return QUICK_ARGS[path.name]
    return ["--quick"]


def run_one(path: Path, quick: bool) -> bool:
    """Run one benchmark, passing its JSON lines through; False when it failed."""
    cmd = [sys.executable, str(path), *(quick_args(path) if quick else [])]
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, cwd=HERE.parent)
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.lstrip().startswith("{"):
            print(line.rstrip(), flush=True)
        else:
            print(line.rstrip(), file=sys.stderr, flush=True)
    code = proc.wait()
    seconds = round(time.perf_counter() - started, 1)
    if code != 0:
        print(json.dumps({"bench": path.stem, "error": f"exit status {code}", "seconds": seconds}), flush=True)
        return False
    print(f"run: {path.name} took {seconds}s", file=sys.stderr, flush=True)
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short runs (about 30 s in all)")
    parser.add_argument("--only", nargs="*", default=[], help="benchmark names, e.g. api store")
    args = parser.parse_args()
    print(json.dumps(machine()), flush=True)
    started = time.perf_counter()
    failed = [path.name for path in benchmarks(args.only) if not run_one(path, args.quick)]
    # Other work on the machine skews every number: the load average says how busy it was.
    print(json.dumps({"bench": "run", "seconds": round(time.perf_counter() - started, 1),
                      "loadavg_1m_after": os.getloadavg()[0], "failed": failed}), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
