"""What the platform tests share: a Docker client, a plain container of the kit's base image, and
the expected results of a hand-in read from assignment.toml and the fixture tables."""

from __future__ import annotations

import io
import json
import shutil
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.docker_support import _unavailable

# The kit's offline base image: Debian's python3 3.11, no pip, no venv (made by
# `grade sandbox build`, which the grading image starts from).
BASE_IMAGE = "socketgrade-base:bookworm"
# The student's user, as the in-place sandbox names it.
STUDENT = "sgstudent"


def docker_client():
    """A client of a running engine that holds BASE_IMAGE, or the test is skipped (failed on
    CI) with the reason."""
    try:
        import docker
        from docker.errors import DockerException, ImageNotFound
    except ImportError as exc:
        _unavailable(f"the docker SDK is not importable ({exc})")
    try:
        client = docker.from_env()
        client.ping()
    except DockerException as exc:
        _unavailable(f"no Docker engine ({exc})")
    try:
        client.images.get(BASE_IMAGE)
    except ImageNotFound:
        _unavailable(f"the image {BASE_IMAGE} is missing: run `grade sandbox build` first")
    return client


def tar_of(files: dict[str, bytes], mode: int = 0o644) -> bytes:
    """A tar archive of {path: content}, for put_archive."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def files_of(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }


def run(container, cmd: str, user: str = "root") -> tuple[int, str]:
    code, out = container.exec_run(["sh", "-c", cmd], user=user)
    return code, out.decode("utf-8", "replace")


def read_json(container, path: str) -> dict:
    code, out = run(container, f"cat {path}")
    assert code == 0, f"cannot read {path}: {out}"
    return json.loads(out)


def expected_failures(table: dict, ident: str, all_checks: list[str]) -> tuple[set[str], dict]:
    entry = table[ident]
    fails = set(all_checks) if entry["fails"] == "all" else set(entry["fails"])
    return fails, entry.get("why", {})


# One hand-in, every check, bounded from outside too: the kit's own wall clock (240 s) ends a
# hanging one first, so this bound only stops a test that would otherwise never end.
GRADE_SECONDS = 600


@contextmanager
def gradescope_container(autograder: Path) -> Iterator:
    """The base image, offline, Docker's default capabilities; the zip unpacked in
    /autograder/source and setup.sh run there; run_autograder copied to /autograder."""
    client = docker_client()
    box = client.containers.run(
        BASE_IMAGE, ["sleep", "infinity"], detach=True, network_mode="none", auto_remove=False
    )
    try:
        box.put_archive("/tmp", tar_of({"autograder.zip": autograder.read_bytes()}))
        code, out = run(
            box,
            "set -e; mkdir -p /autograder/source && cd /autograder/source && "
            "python3 -m zipfile -e /tmp/autograder.zip . && rm /tmp/autograder.zip && "
            "bash setup.sh && cp run_autograder /autograder/run_autograder && "
            "chmod 755 /autograder/run_autograder",
        )
        assert code == 0, out
        yield box
    finally:
        box.remove(force=True)
        client.close()


def gradescope_grade(box, folder: Path) -> dict:
    """One hand-in, as Gradescope hands it over: a fresh /autograder/submission holding its
    files and an empty /autograder/results, then /autograder/run_autograder."""
    code, out = run(
        box,
        "rm -rf /autograder/submission /autograder/results && "
        "mkdir -p /autograder/submission /autograder/results",
    )
    assert code == 0, out
    box.put_archive("/autograder/submission", tar_of(files_of(folder)))
    code, out = run(box, f"cd /autograder && timeout {GRADE_SECONDS} /autograder/run_autograder")
    assert code == 0, out
    return read_json(box, "/autograder/results/results.json")


# A PrairieLearn job's whole grading, bounded from outside: PrairieLearn's own timeout is
# info.json's, and the kit's wall clock inside ends a hanging hand-in well before it.
JOB_SECONDS = 600


@contextmanager
def prairielearn_image(context: Path, tag: str) -> Iterator:
    """The grader image, built without network on the kit's offline base image; removed at
    the end. Yields (client, image)."""
    client = docker_client()
    built, _ = client.images.build(
        path=str(context),
        buildargs={"BASE": BASE_IMAGE},
        tag=tag,
        network_mode="none",
        rm=True,
        forcerm=True,
    )
    try:
        yield client, built
    finally:
        client.images.remove(built.id, force=True)
        client.close()


def prairielearn_grade(image, tmp_path: Path, hand_in: Path) -> tuple[dict, Path]:
    """The job as the grader host makes it: /grade bound from a folder holding student/ and
    data/ (no results/: the entrypoint makes it), no network, the default capabilities, the
    entrypoint of info.json, a TTY; the results read once the container has exited 0."""
    from grader.platforms import prairielearn

    client, built = image
    grade = tmp_path / "grade"
    if hand_in.is_dir():
        shutil.copytree(hand_in, grade / "student")
    else:
        (grade / "student").mkdir(parents=True)
        shutil.copyfile(hand_in, grade / "student" / hand_in.name)
    (grade / "data").mkdir()
    (grade / "data" / "data.json").write_text("{}", encoding="utf-8")
    box = client.containers.create(
        built.id,
        entrypoint=prairielearn.ENTRYPOINT.split(" "),
        network_disabled=True,
        tty=True,
        volumes={str(grade): {"bind": "/grade", "mode": "rw"}},
    )
    try:
        box.start()
        status = box.wait(timeout=JOB_SECONDS)
        logs = box.logs().decode("utf-8", "replace")
    finally:
        box.remove(force=True)
    assert status["StatusCode"] == 0, logs
    results = grade / "results" / "results.json"
    return json.loads(results.read_text(encoding="utf-8")), results
