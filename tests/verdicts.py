"""Reading graded output back, for the tests: which checks failed and why."""

from __future__ import annotations

import json
from pathlib import Path


def load_results(out: Path, ident: str) -> dict:
    return json.loads((out / ident / "results.json").read_text(encoding="utf-8"))


def failed(results: dict) -> set[str]:
    return {t["number"] for t in results["tests"] if t["status"] == "failed"}


def outputs(results: dict) -> dict[str, str]:
    return {t["number"]: t["output"] for t in results["tests"]}


def assert_verdicts(results: dict, expected: dict, all_checks: set[str]) -> None:
    """`expected` is one entry of an expected.toml table."""
    fails = all_checks if expected["fails"] == "all" else set(expected["fails"])
    got = failed(results)
    assert got == fails, f"failed {sorted(got)}, expected {sorted(fails)}:\n" + "\n".join(
        f"  {k}: {v}" for k, v in outputs(results).items() if k in got ^ fails
    )
    texts = outputs(results)
    for check, words in expected.get("why", {}).items():
        assert words in texts[check], f"{check}: {words!r} not in {texts[check]!r}"
