"""The rest of the terminal speaks the chosen language: each command's --help, `grade
assignments` and an invalid course assignment's problems, `grade sandbox`'s own words."""

from __future__ import annotations

import re

import pytest

from grader import i18n
from grader.assignment import AssignmentError, load_assignment, load_folder
from grader.cli import main
from grader.sandbox.docker import cli as sandbox_cli
from grader.terminal import lang_in
from tests.test_assignment import edit, make_lab

HAN = re.compile(r"[\u4e00-\u9fff]")

# Each command with a sentence of its help in English and in Chinese (a description, a
# positional's help, an epilog), so that both the parser's texts and its options are seen.
HELPS = [
    (["--help"], "explain each verdict", "解释每个判定"),
    (["check", "--help"], "Self-check a submission", "提交之前先自查"),
    (["report", "--help"], "Render the reports", "重新生成报告"),
    (["assignments", "--help"], "List the assignments", "列出可以评分的作业"),
    (["sandbox", "--help"], "The Docker image", "Docker 镜像"),
    (["sandbox", "build", "--help"], "made with debootstrap", "不需要镜像仓库"),
]


@pytest.fixture(autouse=True)
def wide_terminal(monkeypatch):
    """Help texts unwrapped, so that a sentence is found whole."""
    monkeypatch.setenv("COLUMNS", "300")


def _help(argv: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 0
    return capsys.readouterr().out


@pytest.mark.parametrize(("argv", "en", "zh"), HELPS, ids=[" ".join(h[0]) for h in HELPS])
def test_help_speaks_the_language_asked_for(argv, en, zh, capsys):
    chinese = _help([*argv, "--lang", "zh"], capsys)
    assert zh in chinese and en not in chinese
    # The --lang option's own help, on every command, is in the language too.
    assert "报告和终端输出的语言" in chinese
    english = _help([*argv, "--lang=en"], capsys)
    assert en in english and not HAN.search(english)
    # argparse's own words stay Python's, in either language.
    assert "usage:" in chinese and "usage:" in english


def test_help_in_both_gives_each_text_twice(capsys):
    out = _help(["check", "--help", "--lang", "both"], capsys)
    assert "提交之前先自查一遍。 / Self-check a submission before handing it in." in out


def test_the_help_language_follows_the_locale_without_lang(monkeypatch, capsys):
    monkeypatch.setenv("LC_ALL", "zh_CN.UTF-8")
    assert "解释每个判定" in _help(["--help"], capsys)
    monkeypatch.setenv("LC_ALL", "en_US.UTF-8")
    assert not HAN.search(_help(["--help"], capsys))


@pytest.mark.parametrize(
    ("argv", "lang"),
    [
        (["--lang", "zh", "x"], "zh"),
        (["check", "--lang=en"], "en"),
        (["--lang", "klingon"], None),  # left for argparse to refuse
        (["--", "--lang", "zh"], None),  # after --, a submissions folder called so
    ],
)
def test_lang_is_read_from_argv_before_parsing(argv, lang, monkeypatch):
    monkeypatch.setenv("LC_ALL", "C")
    assert lang_in(argv) == (lang or i18n.default_lang())


def test_grade_assignments_lists_in_chinese(capsys):
    assert main(["assignments", "--lang", "zh"]) == 0
    out = capsys.readouterr().out
    assert "epoll: 基于 EpollSelector 的并发回显服务器" in out
    assert "server.py（server），10 项检查，100 分：runs, echo," in out
    assert "来自 本工具包：" in out
    assert "checks," not in out and "from the kit" not in out


def test_an_invalid_course_assignment_is_listed_in_chinese(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    broken = make_lab(tmp_path / "course", "broken")
    edit(broken, "points = 40", "points = true")
    make_lab(tmp_path / "course", "blocking")
    assert main(["assignments", "--assignments", "course", "--lang", "zh"]) == 2
    captured = capsys.readouterr()
    assert (
        "broken：无效，有 1 个问题（修正之前不能用它评分）\n"
        "    - course/broken/assignment.toml: checks[1] (echo): points 必须是一个 >= 0 的数，"
        "而不是 true\n"
    ) in captured.out
    assert "取代了工具包自带的 blocking：" in captured.out
    assert "个作业中有 1 个无法使用：broken" in captured.err


def test_an_invalid_assignment_stops_grading_in_chinese(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    lab = make_lab(tmp_path / "course")
    edit(lab, 'kind = "server"', 'kind = "daemon"')
    assert main(["check", "-a", "mylab", "--assignments", "course", "--lang", "zh"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("grade: 作业 'mylab'（course/mylab，来自 --assignments course）无法使用")
    assert '  - course/mylab/assignment.toml: kind "daemon" 必须是 "server" 或 "client"' in err


def test_an_assignment_error_keeps_its_english_and_carries_its_sentences(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    lab = make_lab(tmp_path / "course")
    edit(lab, 'kind = "server"', 'kind = "daemon"')
    item = load_folder(lab)
    assert item.problems == (
        'course/mylab/assignment.toml: kind "daemon" must be "server" or "client"',
    )
    assert [str(m) for m in item.messages] == list(item.problems)
    with pytest.raises(AssignmentError) as info:
        load_assignment("nope")
    assert str(info.value).startswith("unknown assignment 'nope': choose one of ")
    zh = i18n.Speaker("zh").render(info.value.sentence)
    assert zh.startswith("未知的作业 'nope'：请从以下作业中选择：")


def test_sandbox_status_speaks_chinese(monkeypatch, capsys):
    from grader.contract import msg

    monkeypatch.setattr(
        sandbox_cli,
        "image_status_message",
        lambda: msg("{image} is missing: run `grade sandbox build`", image="img:latest"),
    )
    assert sandbox_cli.cli_sandbox(["status", "--lang", "zh"]) == 1
    assert capsys.readouterr().out == "img:latest 不存在：请运行 `grade sandbox build`\n"


def test_a_sandbox_error_speaks_the_language(monkeypatch, capsys):
    from grader.contract import msg
    from grader.sandbox.common import SandboxError

    def refused() -> None:
        raise SandboxError(
            msg(
                "the Docker engine at {where} refused access (permission denied): "
                "add your user to the docker group (and log in again), or use "
                "--sandbox local",
                where="unix:///x",
            )
        )

    monkeypatch.setattr(sandbox_cli, "image_status_message", refused)
    assert sandbox_cli.cli_sandbox(["--lang", "en", "status"]) == 1
    assert capsys.readouterr().err.startswith("grade sandbox: the Docker engine at unix:///x")


def test_sandbox_build_says_its_steps_in_the_language(monkeypatch, capsys):
    from grader.contract import msg, verbatim

    def build(offline=None, progress=print) -> str:
        progress(msg("building {image} on {base}", image="img:latest", base="base:1"))
        progress(verbatim("  Step 1/9 : FROM base:1"))  # Docker's own words, as they are
        return "sha256:0"

    monkeypatch.setattr(sandbox_cli, "build_image", build)
    assert sandbox_cli.cli_sandbox(["build", "--lang", "zh"]) == 0
    assert capsys.readouterr().out == "正在基于 base:1 构建 img:latest\n  Step 1/9 : FROM base:1\n"


def test_chinese_help_is_wrapped_to_the_terminal(monkeypatch, capsys):
    """argparse wraps only at spaces and counts characters; a Chinese help text has no spaces
    and two columns per character, and must still fit."""
    monkeypatch.setenv("COLUMNS", "60")
    out = _help(["--help", "--lang", "zh"], capsys)
    widths = [
        sum(2 if HAN.match(c) or "\uff00" <= c <= "\uff60" else 1 for c in line)
        for line in out.splitlines()
    ]
    assert max(widths) <= 60, out
    # Set as Chinese is: no line starts with a closing mark or ends on an opening bracket.
    assert not re.search(r"(?m)^\s*[），。；：、]|（$", out), out
    assert "课程的作业会取代工具包中同名的作业" in out.replace("\n", "").replace(" ", "")
