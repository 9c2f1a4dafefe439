"""Assignments as data: validated on load with one sentence per problem, open tags, a course's
own folders (`--assignments DIR`, SOCKETGRADE_ASSIGNMENTS) graded like the kit's, and
`grade assignments`."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest

from grader.assignment import (
    ENV_VAR,
    AssignmentError,
    available,
    course_folders,
    installed,
    load_assignment,
    load_folder,
)
from grader.assignment_rules import COMMON_TAGS
from grader.cli import main
from tests.conftest import ASSIGNMENTS, assignment_names, reference_file

ROOT = Path(__file__).resolve().parent.parent
# The tags of DESIGN.md's "Check tags" table: the kit's checks judge exactly these.
DESIGN_TAGS = {
    "runs",
    "echo",
    "disconnect",
    "concurrency",
    "nonblocking",
    "unregister",
    "idle_cpu",
    "single_thread",
    "uses_epoll",
    "cleanup",
    "robustness",
    "connect_wait",
}


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    """Problem sentences name a course's files from the current folder, as a user runs
    `grade` there."""
    monkeypatch.chdir(tmp_path)


def make_lab(parent: Path, name: str = "mylab", source: str = "blocking") -> Path:
    """A course's assignment: a copy of one of the kit's under another name, with a title of
    its own, carrying only what an installed kit carries (assignment.toml and checks.py)."""
    folder = parent / name
    folder.mkdir(parents=True)
    shutil.copyfile(ASSIGNMENTS / source / "checks.py", folder / "checks.py")
    meta = (ASSIGNMENTS / source / "assignment.toml").read_text("utf-8")
    meta = re.sub(r'(?m)^name = ".*"$', f'name = "{name}"', meta)
    meta = re.sub(
        r"(?m)^title = \{.*\}$",
        'title = { en = "My lab: one client at a time", zh = "我的实验:一次一个客户端" }',
        meta,
        count=1,
    )
    (folder / "assignment.toml").write_text(meta, encoding="utf-8")
    return folder


def edit(folder: Path, old: str, new: str, file: str = "assignment.toml", count: int = 1):
    path = folder / file
    text = path.read_text("utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, count), encoding="utf-8")


def problems_of(folder: Path) -> list[str]:
    item = load_folder(folder)
    assert item.assignment is None and item.problems
    return list(item.problems)


# --- the kit's own -------------------------------------------------------------------------


@pytest.mark.parametrize("name", assignment_names())
def test_every_kit_assignment_is_valid(name):
    item = load_folder(ASSIGNMENTS / name)
    assert item.problems == () and item.assignment is not None
    assert item.assignment.name == name and item.assignment.folder == ASSIGNMENTS / name


def test_common_tags_are_documented_in_both_languages():
    assert set(COMMON_TAGS) == DESIGN_TAGS
    for tag, meaning in COMMON_TAGS.items():
        assert meaning.en.strip() and meaning.zh.strip(), tag


def test_validation_needs_only_what_a_wheel_ships(tmp_path):
    """An installed kit has assignment.toml and checks.py, no reference, fixtures, hold-outs
    or examples."""
    for name in assignment_names():
        folder = tmp_path / name
        folder.mkdir()
        for file in ("assignment.toml", "checks.py"):
            shutil.copyfile(ASSIGNMENTS / name / file, folder / file)
        assert load_folder(folder).valid, name


def test_checks_py_is_read_never_imported(tmp_path):
    lab = make_lab(tmp_path)
    marker = tmp_path / "imported"
    edit(
        lab, '"""', f'import pathlib; pathlib.Path({str(marker)!r}).touch()\n"""', file="checks.py"
    )
    assert load_folder(lab).valid
    assert not marker.exists()


# --- tags ----------------------------------------------------------------------------------


def test_a_declared_tag_is_accepted(tmp_path):
    lab = make_lab(tmp_path)
    edit(lab, 'tags = ["concurrency"]', 'tags = ["one_at_a_time"]')
    with open(lab / "assignment.toml", "a", encoding="utf-8") as fh:
        fh.write(
            '\n[tags.one_at_a_time]\nen = "serves one client at a time"\n'
            'zh = "一次服务一个客户端"\n'
        )
    item = load_folder(lab)
    assert item.problems == ()
    assert item.assignment.check("waits_its_turn").tags == ("one_at_a_time",)
    assert item.tags["one_at_a_time"].zh == "一次服务一个客户端"
    assert item.tags["echo"] == COMMON_TAGS["echo"]


def test_an_undeclared_tag_is_refused(tmp_path):
    lab = make_lab(tmp_path)
    edit(lab, 'tags = ["concurrency"]', 'tags = ["uses_select"]')
    assert problems_of(lab) == [
        'mylab/assignment.toml: checks[3] (waits_its_turn): tag "uses_select" is neither a '
        'common tag nor declared as [tags.uses_select] with "en" and "zh"'
    ]


def test_a_check_without_tags_is_tagged_with_its_id(tmp_path):
    lab = make_lab(tmp_path)
    edit(lab, 'id = "waits_its_turn"\ntags = ["concurrency"]\n', 'id = "waits_its_turn"\n')
    assert problems_of(lab) == [
        'mylab/assignment.toml: checks[3] (waits_its_turn): tag "waits_its_turn" (a check '
        "without a tags key is tagged with its id) is neither a common tag nor declared as "
        '[tags.waits_its_turn] with "en" and "zh"'
    ]


# --- one sentence per problem, naming the file and the key ---------------------------------

HINT_EN = "Loop on recv() until it returns b'', and send back everything you received (sendall)."

# (what is broken, how, the sentence expected). Paths are as shown from the current folder.
BROKEN = [
    (
        "a check without its function",
        ("def test_echo(", "def test_echoes(", "checks.py"),
        [
            "mylab/assignment.toml: checks[1] (echo): mylab/checks.py has no function test_echo",
            "mylab/checks.py: line 10: test_echoes has no check: add a [[checks]] table with id = "
            '"echoes" to mylab/assignment.toml, or rename the function',
        ],
    ),
    (
        "a duplicate id",
        ('id = "disconnect"', 'id = "echo"', "assignment.toml"),
        [
            'mylab/assignment.toml: checks[2] (echo): id "echo" is already the id of checks[1]',
            "mylab/checks.py: line 14: test_disconnect has no check: add a [[checks]] table with "
            'id = "disconnect" to mylab/assignment.toml, or rename the function',
        ],
    ),
    (
        "points as a bool",
        ("points = 40", "points = true", "assignment.toml"),
        ["mylab/assignment.toml: checks[1] (echo): points must be a number >= 0, not true"],
    ),
    (
        "negative points",
        ("points = 40", "points = -4.5", "assignment.toml"),
        ["mylab/assignment.toml: checks[1] (echo): points must be a number >= 0, not -4.5"],
    ),
    (
        "points as a string",
        ("points = 40", 'points = "40"', "assignment.toml"),
        ['mylab/assignment.toml: checks[1] (echo): points must be a number >= 0, not "40"'],
    ),
    (
        "no points",
        ("points = 40\n", "", "assignment.toml"),
        [
            "mylab/assignment.toml: checks[1] (echo): points is missing (a number >= 0; 0 for a "
            "check shown for information)"
        ],
    ),
    (
        "a bad visibility",
        ("points = 40\n", 'points = 40\nvisibility = "secret"\n', "assignment.toml"),
        [
            'mylab/assignment.toml: checks[1] (echo): visibility "secret" must be one of visible, '
            "hidden, after_due_date, after_published"
        ],
    ),
    (
        "a hint in one language",
        (f'hint = {{ en = "{HINT_EN}", zh', f'hint = {{ en = "{HINT_EN}", fr', "assignment.toml"),
        [
            'mylab/assignment.toml: checks[1] (echo): hint has no "zh" text',
            'mylab/assignment.toml: checks[1] (echo): hint has an unknown key "fr" (the kit shows '
            "only en and zh)",
        ],
    ),
    (
        "a title as a plain string",
        (
            'title = { en = "Starts and listens", zh = "能启动并监听" }',
            'title = "Starts and listens"',
            "assignment.toml",
        ),
        [
            'mylab/assignment.toml: checks[0] (runs): title must be a table with "en" and "zh" '
            'texts, not "Starts and listens"'
        ],
    ),
    (
        "an assignment title in English only",
        (', zh = "我的实验:一次一个客户端"', "", "assignment.toml"),
        ['mylab/assignment.toml: title has no "zh" text'],
    ),
    (
        "an entry in a subfolder",
        ('entry = "server.py"', 'entry = "src/server.py"', "assignment.toml"),
        [
            'mylab/assignment.toml: entry "src/server.py" must be a plain file name ending in .py, '
            'such as "server.py"'
        ],
    ),
    (
        "an entry that is not Python",
        ('entry = "server.py"', 'entry = "server.c"', "assignment.toml"),
        [
            'mylab/assignment.toml: entry "server.c" must be a plain file name ending in .py, '
            'such as "server.py"'
        ],
    ),
    (
        "an unknown kind",
        ('kind = "server"', 'kind = "daemon"', "assignment.toml"),
        ['mylab/assignment.toml: kind "daemon" must be "server" or "client"'],
    ),
    (
        "an unknown top-level key",
        ('kind = "server"', 'kind = "server"\ndeadline = 3', "assignment.toml"),
        [
            'mylab/assignment.toml: unknown key "deadline" (known: name, title, entry, kind, tags, '
            "checks)"
        ],
    ),
    (
        "an unknown check key",
        ("points = 40", "points = 40\nhints = 2", "assignment.toml"),
        [
            'mylab/assignment.toml: checks[1] (echo): unknown key "hints" '
            "(known: id, tags, points, "
            "visibility, title, explain, hint, requires)"
        ],
    ),
    (
        "an id that is no Python name",
        ('id = "echo"', 'id = "echo-2"', "assignment.toml"),
        [
            'mylab/assignment.toml: checks[1] (echo-2): id "echo-2" is not a Python name, so '
            "checks.py cannot define test_echo-2",
            'mylab/assignment.toml: checks[1] (echo-2): tag "echo-2" '
            "(a check without a tags key is "
            'tagged with its id) is neither a common tag nor declared as [tags.echo-2] with "en" '
            'and "zh"',
            "mylab/assignment.toml: checks[1] (echo-2): "
            "mylab/checks.py has no function test_echo-2",
            "mylab/checks.py: line 10: test_echo has no check: add a [[checks]] table with id = "
            '"echo" to mylab/assignment.toml, or rename the function',
        ],
    ),
    (
        "a name that is not the folder's",
        ('name = "mylab"', 'name = "blocking"', "assignment.toml"),
        [
            'mylab/assignment.toml: name "blocking" is not the folder\'s name "mylab" '
            "(an assignment "
            "is called by its folder's name: rename one, or drop name)"
        ],
    ),
    (
        "a function defined twice",
        (
            "def test_runs(server):",
            "def test_echo(server):\n    pass\n\n\ndef test_runs(server):",
            "checks.py",
        ),
        [
            "mylab/checks.py: line 14: test_echo is defined again (line 6), and only one of them "
            "runs"
        ],
    ),
    (
        "checks.py that does not parse",
        ("def test_runs(server):", "def test_runs(server)", "checks.py"),
        ["mylab/checks.py: line 6: is not valid Python (expected ':')"],
    ),
]


@pytest.mark.parametrize("what,change,sentences", BROKEN, ids=[b[0] for b in BROKEN])
def test_each_problem_is_one_sentence_naming_file_and_key(
    tmp_path, monkeypatch, what, change, sentences
):
    lab = make_lab(tmp_path)
    old, new, file = change
    edit(lab, old, new, file=file)
    assert problems_of(lab) == sentences


def test_a_declared_tag_needs_both_languages(tmp_path, monkeypatch):
    lab = make_lab(tmp_path)
    with open(lab / "assignment.toml", "a", encoding="utf-8") as fh:
        fh.write('\n[tags.uses_select]\nen = "asleep in select"\nmeaning = "x"\n')
    assert problems_of(lab) == [
        'mylab/assignment.toml: tags.uses_select has no "zh" text',
        'mylab/assignment.toml: tags.uses_select has an unknown key "meaning" (the kit shows '
        "only en and zh)",
    ]


def test_every_problem_is_listed_at_once(tmp_path, monkeypatch):
    lab = make_lab(tmp_path)
    edit(lab, "points = 40", "points = true")
    edit(lab, 'kind = "server"', 'kind = "daemon"')
    edit(lab, "def test_disconnect(", "def test_disconnects(", file="checks.py")
    (lab / "checks.py").write_text((lab / "checks.py").read_text() + "\n\ndef test_x(): pass\n")
    assert len(problems_of(lab)) == 5


def test_a_missing_checks_file(tmp_path, monkeypatch):
    lab = make_lab(tmp_path)
    (lab / "checks.py").unlink()
    assert problems_of(lab) == [
        "mylab/checks.py: is missing (each check is a function test_<id> in it)"
    ]


def test_a_kit_problem_names_the_kit_path(tmp_path, monkeypatch):
    """A problem in the kit's own assignments is named from the kit's folder, as
    `assignments/<name>/assignment.toml`, wherever `grade` runs."""
    kit = tmp_path / "kit"
    lab = make_lab(kit / "assignments", "select")
    edit(lab, 'kind = "server"', 'kind = "daemon"')
    monkeypatch.chdir(lab)
    with pytest.raises(AssignmentError) as info:
        load_assignment("select", root=kit / "assignments")
    assert info.value.problems == (
        'assignments/select/assignment.toml: kind "daemon" must be "server" or "client"',
    )
    assert str(info.value).startswith(
        "the assignment 'select' (assignments/select, from the kit) cannot be used: 1 problem "
        "in its files, a configuration fault and not any submission's\n  - assignments/"
    )


def test_invalid_toml_says_where(tmp_path):
    lab = make_lab(tmp_path)
    edit(lab, 'kind = "server"', "kind = server")
    [sentence] = problems_of(lab)
    assert sentence.startswith("mylab/assignment.toml: is not valid TOML (")
    assert "line 4" in sentence


# --- a course's own folders ----------------------------------------------------------------


def test_a_course_folder_is_one_assignment_or_a_folder_of_them(tmp_path):
    one = make_lab(tmp_path / "one", "lab1")
    make_lab(tmp_path / "many", "lab2")
    make_lab(tmp_path / "many", "lab3")
    (tmp_path / "many" / "notes").mkdir()  # no assignment.toml: not an assignment
    folders = course_folders([str(one)], env=os.pathsep.join(["many", ""]))
    assert [(f.given, f.source) for f in folders] == [
        (str(one), "--assignments"),
        ("many", ENV_VAR),
    ]
    assert folders[1].path == tmp_path / "many"
    assert available(folders) == sorted([*assignment_names(), "lab1", "lab2", "lab3"])
    lab2 = load_assignment("lab2", folders=folders)
    assert lab2.folder == tmp_path / "many" / "lab2" and lab2.title.en.startswith("My lab")


def test_a_course_folder_overrides_the_kit_and_the_first_given_wins(tmp_path):
    make_lab(tmp_path / "a", "epoll", source="blocking")
    make_lab(tmp_path / "b", "epoll", source="nonblocking")
    folders = course_folders(["a"], env="b")
    assert len(load_assignment("epoll", folders=folders).checks) == 4  # blocking's four
    [item] = [i for i in installed(folders) if i.name == "epoll"]
    assert item.origin == "--assignments a"
    assert item.hides == (tmp_path / "b" / "epoll", ASSIGNMENTS / "epoll")
    assert len(load_assignment("epoll").checks) == 10  # without the course: the kit's own


@pytest.mark.parametrize(
    "given,sentence",
    [
        ("nothere", "the assignments folder 'nothere' (from --assignments) does not exist"),
        (
            "empty",
            "the assignments folder 'empty' (from --assignments) holds no assignment: "
            "neither it nor any folder in it has an assignment.toml",
        ),
    ],
)
def test_a_course_folder_that_holds_nothing_is_one_sentence(tmp_path, given, sentence):
    (tmp_path / "empty").mkdir()
    with pytest.raises(AssignmentError) as info:
        available(course_folders([given]))
    assert str(info.value) == sentence


# --- the command line ----------------------------------------------------------------------


def test_grade_assignments_lists_the_kit(capsys):
    assert main(["assignments", "--lang", "both"]) == 0
    out = capsys.readouterr().out
    for name in assignment_names():
        assert f"{name}: " in out
    assert "epoll: Concurrent echo server on epoll / 基于 EpollSelector 的并发回显服务器" in out
    assert "server.py (server), 10 checks, 100 points: runs, echo," in out
    assert f"from the kit: {ASSIGNMENTS / 'client'}" in out


def test_grade_assignments_lists_a_course_and_its_invalid_ones(tmp_path, monkeypatch, capsys):
    make_lab(tmp_path / "course", "mylab")
    broken = make_lab(tmp_path / "course", "broken")
    edit(broken, "points = 40", "points = true")
    make_lab(tmp_path / "more", "blocking")
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "more"))
    assert main(["assignments", "--assignments", "course", "--lang", "en"]) == 2
    captured = capsys.readouterr()
    out = captured.out
    assert "mylab: My lab: one client at a time\n" in out
    assert f"from --assignments course: {tmp_path / 'course' / 'mylab'}" in out
    assert (
        "broken: INVALID, 1 problem (it cannot be graded with until they are fixed)\n"
        "    - course/broken/assignment.toml: checks[1] (echo): points must be a number "
        ">= 0, not true\n"
    ) in out
    assert f"overrides the kit's own blocking: {ASSIGNMENTS / 'blocking'}" in out
    # the kit's own, mylab and broken (the course's blocking takes the kit's one's place)
    total = len(assignment_names()) + 2
    assert f"1 of {total} assignments cannot be used: broken" in captured.err


def test_a_submissions_folder_called_assignments_is_pointed_out(capsys):
    with pytest.raises(SystemExit) as info:
        main(["assignments", "-a", "epoll"])
    assert info.value.code == 2
    assert (
        "unrecognized arguments: -a epoll (to grade a submissions folder named "
        "'assignments', write it as ./assignments)"
    ) in capsys.readouterr().err


def test_an_invalid_assignment_is_a_configuration_fault_not_a_crash(tmp_path, capsys):
    lab = make_lab(tmp_path / "course")
    edit(lab, "def test_echo(", "def test_echoes(", file="checks.py")
    shutil.copyfile(reference_file("blocking"), tmp_path / "server.py")
    for argv in (["check", "server.py"], [".", "--sandbox", "local", "--out", "o"]):
        assert main([*argv, "-a", "mylab", "--assignments", "course", "--lang", "en"]) == 2
        err = capsys.readouterr().err
        assert err == (
            "grade: the assignment 'mylab' (course/mylab, from --assignments course) cannot be "
            "used: 2 problems in its files, a configuration fault and not any submission's\n"
            "  - course/mylab/assignment.toml: checks[1] (echo): course/mylab/checks.py has no "
            "function test_echo\n"
            "  - course/mylab/checks.py: line 10: test_echoes has no check: add a [[checks]] "
            'table with id = "echoes" to course/mylab/assignment.toml, or rename the '
            "function\n"
        )
    assert not (tmp_path / "socketgrade-report").exists() and not (tmp_path / "o").exists()


def test_a_bad_course_folder_is_a_bad_command_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(ENV_VAR, "gone")
    assert main(["check", "-a", "epoll", "--lang", "en"]) == 2
    assert capsys.readouterr().err == (
        f"grade: the assignments folder 'gone' (from {ENV_VAR}) does not exist\n"
    )


def _grade_class(tmp_path: Path, sandbox: str) -> Path:
    """A class of two graded against a course's `mylab` (a copy of blocking with a title of
    its own): the reference, and one of blocking's fixtures with an echo bug."""
    make_lab(tmp_path / "course")
    cls = tmp_path / "class"
    (cls / "alice").mkdir(parents=True)
    shutil.copyfile(reference_file("blocking"), cls / "alice" / "server.py")
    shutil.copytree(ASSIGNMENTS / "blocking" / "fixtures" / "upper_case", cls / "bob")
    code = main(
        [
            "class",
            "-a",
            "mylab",
            "--assignments",
            "course",
            "--sandbox",
            sandbox,
            "--out",
            "out",
            "--jobs",
            "2",
        ]
    )
    assert code == 0
    return tmp_path / "out"


def _assert_graded(out: Path, sandbox: str) -> None:
    alice = json.loads((out / "alice" / "results.json").read_text())
    bob = json.loads((out / "bob" / "results.json").read_text())
    assert alice["score"] == 100 and alice["extra_data"]["sandbox"] == sandbox
    assert [t["number"] for t in bob["tests"] if t["score"] < t["max_score"]] == ["echo"]
    assert "My lab: one client at a time" in (out / "index.html").read_text()


def test_a_course_assignment_grades_in_the_local_sandbox(tmp_path, capsys):
    _assert_graded(_grade_class(tmp_path, "local"), "local")
    # The student's self-check against it, from the folder they work in.
    shutil.copyfile(reference_file("blocking"), tmp_path / "server.py")
    assert main(["check", "server.py", "-a", "mylab", "--assignments", "course"]) == 0
    assert "all visible checks pass: 100/100" in capsys.readouterr().err
    report = tmp_path / "socketgrade-report" / "server" / "report.html"
    assert "My lab: one client at a time" in report.read_text()


@pytest.mark.docker
def test_a_course_assignment_grades_in_docker(tmp_path, docker_engine):
    _assert_graded(_grade_class(tmp_path, "docker"), "docker")
