"""Speed and memory figures (printed, not asserted): per-submission grading time of each
reference, and a class of N submissions graded with --jobs.

Usage: python scripts/benchmark.py [--sandbox local|docker] [--class-size 12] [--jobs 2]
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from grader.cli import main as grade  # noqa: E402
from tests.conftest import assignment_names, reference_file  # noqa: E402


def peak_rss_mib() -> float:
    """Peak resident memory of this process and, separately, of its largest child."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sandbox", default="local")
    ap.add_argument("--class-size", type=int, default=12)
    ap.add_argument("--jobs", type=int, default=2)
    ns = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        print(f"sandbox: {ns.sandbox}")
        print("per submission (one reference at a time, --jobs 1):")
        for assignment in assignment_names():
            ref = reference_file(assignment)
            cls = tmp / f"one-{assignment}"
            (cls / "reference").mkdir(parents=True)
            shutil.copyfile(ref, cls / "reference" / ref.name)
            start = time.monotonic()
            code = grade(
                [
                    str(cls),
                    "-a",
                    assignment,
                    "-o",
                    str(tmp / f"o-{assignment}"),
                    "--sandbox",
                    ns.sandbox,
                    "--jobs",
                    "1",
                ]
            )
            wall = time.monotonic() - start
            res = json.loads((tmp / f"o-{assignment}" / "reference" / "results.json").read_text())
            print(
                f"  {assignment:12s} score {res['score']:>5g}  execution_time "
                f"{res['execution_time']:5.1f} s  wall {wall:5.1f} s  exit {code}"
            )
        cls = tmp / "class"
        cls.mkdir()
        sources = [
            reference_file("epoll"),
            ROOT / "assignments" / "epoll" / "examples" / "course_listing" / "server.py",
        ]
        for i in range(ns.class_size):
            (cls / f"student{i:02d}").mkdir()
            shutil.copyfile(sources[i % 2], cls / f"student{i:02d}" / "server.py")
        start = time.monotonic()
        grade(
            [
                str(cls),
                "-a",
                "epoll",
                "-o",
                str(tmp / "o-class"),
                "--sandbox",
                ns.sandbox,
                "--jobs",
                str(ns.jobs),
            ]
        )
        wall = time.monotonic() - start
        children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print(
            f"class of {ns.class_size} epoll submissions, --jobs {ns.jobs}: {wall:.1f} s "
            f"({wall / ns.class_size:.1f} s per submission)"
        )
        print(
            f"peak memory: grader {peak_rss_mib():.0f} MiB, largest child process "
            f"{children:.0f} MiB"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
