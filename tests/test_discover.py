"""Discover stage: folders, single files and zips become submissions; bad ones a clear problem."""

from __future__ import annotations

import os
import stat
import zipfile

import pytest

from grader.discover import MAX_BYTES, DiscoverError, choose_entry, discover, single


def make_zip(path, entries):
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return path


def test_each_child_is_one_student(tmp_path):
    root = tmp_path / "class"
    (root / "alice").mkdir(parents=True)
    (root / "alice" / "server.py").write_text("print(1)\n")
    (root / "bob.py").write_text("print(2)\n")
    make_zip(root / "carol.zip", {"carol/server.py": "print(3)\n", "carol/util.py": ""})
    (root / ".hidden").mkdir()
    (root / "notes.txt").write_text("hi")
    subs = {s.id: s for s in discover(root, "server.py", tmp_path / "scratch")}
    assert set(subs) == {"alice", "bob", "carol", "notes"}
    assert subs["alice"].entry == "server.py" and subs["alice"].folder == root / "alice"
    assert subs["bob"].entry == "bob.py", "a single .py file is its own entry"
    assert subs["carol"].entry == "server.py", "a zip of one folder is that folder's content"
    assert (subs["carol"].folder / "util.py").is_file()
    assert str(subs["notes"].problem) == "notes.txt is neither a folder, a .py file nor a .zip"


def test_entry_falls_back_to_the_only_py_file_else_lists_files(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "my_server.py").write_text("")
    entry, problem, _ = choose_entry(tmp_path / "a", "server.py")
    assert (entry, str(problem)) == ("my_server.py", "")
    (tmp_path / "b").mkdir()
    for n in ("one.py", "two.py", "README.md"):
        (tmp_path / "b" / n).write_text("")
    entry, problem, _ = choose_entry(tmp_path / "b", "server.py")
    assert entry is None
    assert str(problem) == (
        "several .py files and none of them is named server.py; found: README.md, one.py, two.py"
    )
    (tmp_path / "c").mkdir()
    assert "no .py file" in str(choose_entry(tmp_path / "c", "server.py")[1])


def test_zip_with_parent_paths_is_refused_and_nothing_escapes(tmp_path):
    root = tmp_path / "class"
    root.mkdir()
    make_zip(root / "evil.zip", {"server.py": "", "../../escaped.py": "owned"})
    (sub,) = discover(root, "server.py", tmp_path / "scratch")
    assert sub.folder is None
    assert "unsafe path '../../escaped.py'" in str(sub.problem)
    assert not list(tmp_path.rglob("escaped.py"))


def test_zip_with_absolute_path_or_symlink_is_refused(tmp_path):
    root = tmp_path / "class"
    root.mkdir()
    make_zip(root / "abs.zip", {"/etc/cron.d/x": ""})
    with zipfile.ZipFile(root / "link.zip", "w") as zf:
        info = zipfile.ZipInfo("server.py")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, "/etc/passwd")
    subs = {s.id: s for s in discover(root, "server.py", tmp_path / "scratch")}
    assert "unsafe path" in str(subs["abs"].problem)
    assert "symbolic link" in str(subs["link"].problem)


def test_zip_bomb_is_stopped(tmp_path):
    root = tmp_path / "class"
    root.mkdir()
    make_zip(root / "bomb.zip", {"server.py": "", "big.bin": b"\0" * (MAX_BYTES + 1)})
    (sub,) = discover(root, "server.py", tmp_path / "scratch")
    assert sub.folder is None and "would unpack to" in str(sub.problem)
    assert os.path.getsize(root / "bomb.zip") < 100_000


def test_zip_that_lies_about_sizes_is_stopped_while_unpacking(tmp_path):
    root = tmp_path / "class"
    root.mkdir()
    path = make_zip(root / "liar.zip", {"server.py": "", "big.bin": b"\0" * (MAX_BYTES + 10)})
    # Rewrite the declared (central directory) size of big.bin to a small number.
    data = bytearray(path.read_bytes())
    real = (MAX_BYTES + 10).to_bytes(4, "little")
    idx = data.rfind(real)
    assert idx > 0
    data[idx : idx + 4] = (1000).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    (sub,) = discover(root, "server.py", tmp_path / "scratch")
    assert sub.folder is None and str(sub.problem)


def test_not_a_zip(tmp_path):
    root = tmp_path / "class"
    root.mkdir()
    (root / "dave.zip").write_bytes(b"PK\x03\x04 truncated")
    (sub,) = discover(root, "server.py", tmp_path / "scratch")
    assert str(sub.problem) == "dave.zip is not a valid zip file"


def test_whole_input_errors_are_one_sentence(tmp_path):
    with pytest.raises(DiscoverError, match="does not exist"):
        discover(tmp_path / "nope", "server.py", tmp_path / "s")
    (tmp_path / "file").write_text("")
    with pytest.raises(DiscoverError, match="is not a folder of submissions"):
        discover(tmp_path / "file", "server.py", tmp_path / "s")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DiscoverError, match="is empty"):
        discover(tmp_path / "empty", "server.py", tmp_path / "s")
    with pytest.raises(DiscoverError, match="does not exist"):
        single(tmp_path / "missing.py", "server.py", tmp_path / "s")


def test_same_name_twice_gets_two_ids(tmp_path):
    root = tmp_path / "class"
    (root / "alice").mkdir(parents=True)
    (root / "alice" / "server.py").write_text("")
    make_zip(root / "alice.zip", {"server.py": ""})
    ids = sorted(s.id for s in discover(root, "server.py", tmp_path / "scratch"))
    assert ids == ["alice", "alice-2"]


def test_odd_hand_ins_become_problems_not_crashes(tmp_path):
    """A zip of hw/hw/server.py, hand-ins named like the output's own files, and file names
    that are not UTF-8: each is prepared or refused with a sentence, never a crash."""
    root = tmp_path / "class"
    root.mkdir()
    make_zip(root / "nested.zip", {"hw/hw/server.py": "print(1)\n"})
    make_zip(root / "grades.csv.zip", {"server.py": ""})
    (root / "index.html").mkdir()
    (root / "index.html" / "server.py").write_text("")
    weird = root / "weird"
    weird.mkdir()
    for raw in (b"caf\xe9.py", b"na\xefve.py"):
        (weird / os.fsdecode(raw)).write_text("")
    subs = {s.id: s for s in discover(root, "server.py", tmp_path / "scratch")}
    assert "grades.csv" not in subs and "index.html" not in subs
    assert {"grades.csv-2", "index.html-2"} <= set(subs)
    nested = subs["nested"]
    assert (nested.folder / "hw" / "server.py").is_file()
    assert str(nested.problem) == "no .py file, and none is named server.py; found: hw/server.py"
    problem = str(subs["weird"].problem)
    problem.encode("utf-8")  # writable into results.json as is
    assert "caf\ufffd.py" in problem


def _student_folder(tmp_path):
    """A folder as a student has it after a first `grade check .`: their files, and the
    kit's report folder (with the kit's scratch) inside it."""
    lab = tmp_path / "lab3"
    (lab / "util").mkdir(parents=True)
    (lab / "server.py").write_text("print('serving')\n")
    (lab / "util" / "helpers.py").write_text("")
    report = lab / "socketgrade-report"
    (report / ".work" / "runs").mkdir(parents=True)
    (report / "lab3").mkdir()
    (report / "lab3" / "report.html").write_text("<html></html>")
    (report / ".work" / "runs" / "leftover.py").write_text("")
    return lab, report


def test_a_folder_holding_the_output_folder_is_graded_without_it(tmp_path):
    lab, report = _student_folder(tmp_path)
    sub = single(lab, "server.py", report / ".work" / "submission", leave_out=(report,))
    assert str(sub.problem) == "" and sub.entry == "server.py"
    assert sub.files == ("server.py", "util/helpers.py")
    # The sandbox gets a copy without the report folder, so copying it cannot recurse.
    assert sub.folder == report / ".work" / "submission" / "lab3"
    assert sorted(str(p.relative_to(sub.folder)) for p in sub.folder.rglob("*")) == [
        "server.py",
        "util",
        "util/helpers.py",
    ]


def test_the_output_folder_does_not_count_against_the_size_limit(tmp_path):
    lab, report = _student_folder(tmp_path)
    for n in range(250):  # more files than a hand-in may hold, all the kit's own
        (report / ".work" / "runs" / f"f{n}").write_text("")
    sub = single(lab, "server.py", tmp_path / "scratch", leave_out=(report,))
    assert str(sub.problem) == "" and sub.entry == "server.py"
    unbounded = single(lab, "server.py", tmp_path / "scratch2")
    assert str(unbounded.problem).startswith("the folder holds 254 files")


def test_sockets_and_fifos_in_a_copied_folder_are_left_out(tmp_path):
    lab, report = _student_folder(tmp_path)
    os.mkfifo(lab / "pipe")  # copying a FIFO's content would block forever
    sub = single(lab, "server.py", tmp_path / "scratch", leave_out=(report,))
    assert str(sub.problem) == "" and not (sub.folder / "pipe").exists()
    assert (sub.folder / "server.py").read_text() == "print('serving')\n"


def test_relative_paths_and_dot_name_the_student_folder(tmp_path, monkeypatch):
    lab, report = _student_folder(tmp_path)
    monkeypatch.chdir(lab)
    for n, given in enumerate((".", "./", "../lab3/", "../lab3")):
        sub = single(given, "server.py", tmp_path / f"s{n}", leave_out=(report,))
        assert sub.id == "lab3", given
        assert sub.folder.is_absolute() and sub.entry == "server.py"
    monkeypatch.chdir(tmp_path)
    sub = single("lab3/server.py", "server.py", tmp_path / "s-file")
    assert sub.id == "server" and sub.folder.is_absolute()
    assert (sub.folder / "server.py").is_file()
    with pytest.raises(DiscoverError, match=r"^'lab4/' does not exist$"):
        single("lab4/", "server.py", tmp_path / "s-missing")


def test_a_relative_class_folder_skips_the_output_folder_inside_it(tmp_path, monkeypatch):
    root = tmp_path / "class"
    for name in ("alice", "out"):
        (root / name).mkdir(parents=True)
        (root / name / "server.py").write_text("")
    (root / "bob").mkdir()
    (root / "bob" / "server.py").write_text("")
    (root / "bob" / "out").mkdir()  # bob's own folder holds the output folder
    (root / "bob" / "out" / "x.py").write_text("")
    monkeypatch.chdir(tmp_path)
    subs = {
        s.id: s
        for s in discover(
            "class/",
            "server.py",
            tmp_path / "scratch",
            leave_out=(root / "out", root / "bob" / "out"),
        )
    }
    assert set(subs) == {"alice", "bob"}
    assert subs["alice"].folder == root / "alice"
    assert subs["bob"].files == ("server.py",)
    with pytest.raises(DiscoverError, match=r"^the submissions folder 'nope/' does not exist$"):
        discover("nope/", "server.py", tmp_path / "scratch")


def test_a_students_git_and_venv_are_left_out(tmp_path):
    """`grade check .` in a real project folder: its .git and virtual environment hold far
    more files than the limit, and are no part of the hand-in."""
    lab = tmp_path / "lab"
    lab.mkdir()
    (lab / "server.py").write_text("print('hi')\n")
    for tool, marker in ((".git", "HEAD"), ("env", "pyvenv.cfg"), ("venv", "x")):
        (lab / tool).mkdir()
        (lab / tool / marker).write_text("x\n")
        for i in range(150):
            (lab / tool / f"f{i}").write_text("x\n")
    (lab / "notes").mkdir()
    (lab / "notes" / "todo.txt").write_text("kept\n")
    sub = single(lab, "server.py", tmp_path / "scratch")
    assert str(sub.problem) == "" and sub.entry == "server.py"
    assert sub.files == ("notes/todo.txt", "server.py")
    assert sorted(p.name for p in sub.folder.iterdir()) == ["notes", "server.py"]
