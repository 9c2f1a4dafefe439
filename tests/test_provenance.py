"""Provenance: kit version, date, sandbox and image, assignment hash and file hashes on every
results.json and report, and the kit version and date on the class index."""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from grader import render
from grader.assignment import assignment_hash, files_hash, load_assignment
from grader.cli import grade_one, main
from grader.discover import file_hashes, prepare, sha256_file
from grader.export import gradescope_results
from grader.i18n import Speaker
from grader.models import FileHash, Provenance, RunOutcome
from grader.score import grading_date, kit_version, score
from tests.conftest import reference_file

try:  # the fixture is also imported by conftest.py; either way it is the same function
    from tests.docker_support import docker_engine
except ImportError:  # pragma: no cover
    from docker_support import docker_engine  # noqa: F401


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- the hashing functions ------------------------------------------------------------------


def test_sha256_file_and_file_hashes(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "server.py").write_bytes(b"print('hi')\n")
    (tmp_path / "pkg" / "util.py").write_bytes(b"")
    assert sha256_file(tmp_path / "server.py") == sha256(b"print('hi')\n")
    hashes = file_hashes(tmp_path, ("pkg/util.py", "server.py", "gone.py"))
    assert hashes == (
        FileHash("pkg/util.py", 0, sha256(b"")),
        FileHash("server.py", 12, sha256(b"print('hi')\n")),
    )


def test_files_hash_is_order_free_and_tells_files_apart():
    one = files_hash({"a": b"xy", "b": b"z"})
    assert one == files_hash({"b": b"z", "a": b"xy"})
    assert one != files_hash({"a": b"x", "b": b"yz"}), "bytes moved between files"
    assert len(one) == 64


def test_assignment_hash_changes_with_checks_py(tmp_path):
    src = reference_file("epoll").parent.parent
    for name in ("assignment.toml", "checks.py"):
        shutil.copyfile(src / name, tmp_path / name)
    folder = tmp_path
    before = assignment_hash(folder)
    assert before == assignment_hash(folder)
    with open(folder / "checks.py", "a", encoding="utf-8") as fh:
        fh.write("\n# changed\n")
    assert assignment_hash(folder) != before
    assert load_assignment("epoll").digest == assignment_hash(src)


def test_grading_date_and_kit_version():
    moment = datetime(2026, 1, 2, 3, 4, 5, 678, tzinfo=UTC)
    assert grading_date(moment) == "2026-01-02T03:04:05+00:00"
    assert datetime.fromisoformat(grading_date()).tzinfo is not None
    assert kit_version() and kit_version() != "unknown"


def test_prepared_submission_carries_its_hashes(tmp_path):
    server = tmp_path / "alice.py"
    server.write_bytes(b"x = 1\n")
    sub = prepare(server, "alice", "server.py", tmp_path / "scratch")
    assert sub.hashes == (FileHash("alice.py", 6, sha256(b"x = 1\n")),)
    assert sub.hashed == "prepared copy"
    folder = tmp_path / "bob"
    folder.mkdir()
    (folder / "server.py").write_bytes(b"y = 2\n")
    sub = prepare(folder, "bob", "server.py", tmp_path / "scratch")
    assert sub.hashed == "as handed in"
    assert [h.path for h in sub.hashes] == ["server.py"]


# --- results.json and the reports -----------------------------------------------------------


def test_self_check_results_json_has_provenance(tmp_path, capsys):
    sub = tmp_path / "server.py"
    shutil.copyfile(reference_file("epoll"), sub)
    out = tmp_path / "report"
    assert main(["check", str(sub), "--assignment", "epoll", "--out", str(out)]) == 0
    results = json.loads((out / "server" / "results.json").read_text())
    prov = results["extra_data"]["provenance"]
    assert prov["files"] == {"server.py": sha256(sub.read_bytes())}
    assert prov["sandbox"] == "local"
    assert prov["image_id"] is None and prov["image_digest"] is None
    assert prov["kit_version"] == kit_version()
    assert datetime.fromisoformat(prov["graded_at"]).utcoffset().total_seconds() == 0
    assert prov["assignment_hash"] == load_assignment("epoll").digest
    html = (out / "server" / "report.html").read_text()
    assert "Provenance" in html and sha256(sub.read_bytes()) in html


def _result(tmp_path: Path, name: str):
    folder = tmp_path / "hand-in"
    folder.mkdir()
    (folder / name).write_bytes(b"pass\n")
    assignment = load_assignment("epoll")
    sub = prepare(folder, "s1", "server.py", tmp_path / "scratch")
    outcome = RunOutcome(None, 1.0, "local", error="nothing", error_fault="infrastructure")
    return score(assignment, sub, outcome, graded_at="2026-01-02T03:04:05+00:00")


def test_report_provenance_section_escapes_file_names(tmp_path):
    result = _result(tmp_path, "<b>.py")
    html = render.render_report(result, speaker=Speaker("en"))
    assert '<h2 id="provenance">Provenance</h2>' in html
    assert "<b>.py" not in html
    assert "&lt;b&gt;.py" in html
    assert sha256(b"pass\n") in html
    assert "2026-01-02T03:04:05+00:00" in html
    # Below the sandbox details.
    assert html.index("Provenance</h2>") > html.index("How it was graded")


def test_index_states_kit_version_and_date(tmp_path):
    result = _result(tmp_path, "server.py")
    html = render.render_index([result], result.assignment)
    assert f"socketgrade {kit_version()}" in html
    assert "2026-01-02T03:04:05+00:00" in html


def test_provenance_to_json_without_image():
    prov = Provenance("1.0", "2026-01-02T03:04:05+00:00", "local")
    data = prov.to_json()
    assert data["image_id"] is None and data["files"] == {}


@pytest.mark.docker
def test_docker_run_names_its_image(tmp_path, docker_engine):
    from grader.sandbox import make_sandbox
    from grader.sandbox.docker.image import IMAGE

    folder = tmp_path / "hand-in"
    folder.mkdir()
    shutil.copyfile(reference_file("epoll"), folder / "server.py")
    assignment = load_assignment("epoll")
    sub = prepare(folder, "s1", assignment.entry, tmp_path / "scratch")
    sandbox = make_sandbox("docker", 120, scratch=tmp_path / "runs")
    result = grade_one(sandbox, assignment, sub, ("runs",), 120)
    prov = gradescope_results(result)["extra_data"]["provenance"]
    assert prov["sandbox"] == "docker"
    assert prov["image_id"] and prov["image_id"] == docker_engine.images.get(IMAGE).id
    assert prov["files"] == {"server.py": sha256((folder / "server.py").read_bytes())}
    assert gradescope_results(replace(result, provenance=None))["extra_data"]["provenance"] is None
