"""The host speaks the chosen language: --lang (default from the locale) on the terminal, in
the tracer's notes and endings, in a hand-in's problems, and in results.json."""

from __future__ import annotations

import json
import re
import signal
from pathlib import Path

import pytest

from grader import cli, i18n
from grader.assignment import load_assignment
from grader.cli import main
from grader.contract import TraceEvent
from grader.explain import describe_exit, trace_note
from grader.export import TEST_OUTPUT_MAX, gradescope_results
from grader.models import RunOutcome, Submission
from grader.sandbox.common import how_it_ended, no_report
from grader.score import score
from tests.conftest import reference_file

DATA = Path(__file__).parent / "data"
HAN = re.compile(r"[\u4e00-\u9fff]")


def listing_report() -> dict:
    """A real harness report: the course's listing passes 9 checks and fails robustness."""
    return json.loads((DATA / "course_listing_report.json").read_text(encoding="utf-8"))


class FakeSandbox:
    """A sandbox that hands back a saved harness report: the terminal without grading."""

    name = "local"

    def __init__(self, report: dict | None) -> None:
        self.report = report

    def describe(self) -> dict:
        return {}

    def run(self, req):
        return RunOutcome(self.report, 1.5, self.name, {})

    def stop_all(self) -> None:
        pass


@pytest.fixture
def locale(monkeypatch):
    def set_locale(value: str) -> None:
        for name in ("LC_ALL", "LC_MESSAGES"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("LANG", value)

    return set_locale


@pytest.fixture
def fake_sandbox(monkeypatch):
    monkeypatch.setattr(cli, "make_sandbox", lambda *a, **k: FakeSandbox(listing_report()))


def lines(err: str) -> list[str]:
    return [line.strip() for line in err.splitlines() if line.strip()]


@pytest.mark.parametrize(
    ("lang", "zh", "en"),
    [("zh", True, False), ("en", False, True), ("both", True, True)],
)
def test_errors_speak_the_chosen_language(tmp_path, capsys, lang, zh, en):
    missing = str(tmp_path / "nope")
    args = [missing, "-a", "epoll", "--sandbox", "local", "--out", str(tmp_path / "o")]
    assert main([*args, "--lang", lang]) == 2
    err = capsys.readouterr().err
    assert (f"提交文件夹 '{missing}' 不存在" in err) is zh
    assert (f"the submissions folder '{missing}' does not exist" in err) is en
    if zh and en:
        assert err.index("不存在") < err.index("does not exist"), "both: Chinese first"


@pytest.mark.parametrize(
    ("value", "expected"),
    [("zh_CN.UTF-8", "zh"), ("en_GB.UTF-8", "en"), ("C.UTF-8", "both"), ("", "both")],
)
def test_the_default_follows_the_locale(tmp_path, capsys, locale, value, expected):
    locale(value)
    assert i18n.default_lang() == expected
    main([str(tmp_path / "nope"), "-a", "epoll", "--sandbox", "local", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert bool(HAN.search(err)) is (expected != "en")
    assert ("does not exist" in err) is (expected != "zh")


def test_self_check_in_chinese_gives_reason_and_chinese_hint(tmp_path, capsys, fake_sandbox):
    sub = tmp_path / "server.py"
    sub.write_text(reference_file("epoll").read_text())
    out = tmp_path / "report"
    code = main(["check", str(sub), "-a", "epoll", "--out", str(out), "--lang", "zh"])
    err = capsys.readouterr().err
    assert code in (0, 1)
    epoll = load_assignment("epoll")
    # Each check's title in Chinese, the summary line in Chinese, no English sentence of ours.
    for spec in epoll.checks:
        if spec.self_check:
            assert spec.title.zh in err
    assert "用时" in err and "报告" in err
    assert "all visible checks pass" not in err and "some checks fail" not in err
    assert "in 1.5 s" not in err


def test_self_check_in_both_languages_prints_each_failure_twice(tmp_path, capsys, monkeypatch):
    report = listing_report()
    for test in report["tests"]:  # make a visible check fail, with its reason and hint
        if test["nodeid"].endswith("::test_echo"):
            test["outcome"] = "failed"
            test["call"] = {"outcome": "failed", "longrepr": "x", "crash": {"message": "x"}}
            test["call"]["crash"]["message"] = "Failed: client A got nothing back"
    monkeypatch.setattr(cli, "make_sandbox", lambda *a, **k: FakeSandbox(report))
    sub = tmp_path / "server.py"
    sub.write_text("print('hi')\n")
    out = tmp_path / "report"
    assert main(["check", str(sub), "-a", "epoll", "--out", str(out), "--lang", "both"]) == 1
    err = lines(capsys.readouterr().err)
    echo = load_assignment("epoll").check("echo")
    zh_hint = next(i for i, line in enumerate(err) if line.startswith("提示："))
    en_hint = next(i for i, line in enumerate(err) if line.startswith("hint:"))
    assert zh_hint < en_hint and echo.hint.zh in err[zh_hint] and echo.hint.en in err[en_hint]
    assert any(line.startswith("原因：") for line in err)
    assert "why:  client A got nothing back" in err
    assert any(line.startswith("部分检查未通过") for line in err)
    assert any(line.startswith("some checks fail") for line in err)


def test_tracer_notes_and_endings_translate_with_identical_figures():
    zh = i18n.Speaker("zh")
    note = trace_note(
        TraceEvent.from_json(
            {"ev": "close_registered", "fd": 5, "at": "server.py:16", "registered_at": "x.py:2"}
        )
    )
    assert (
        str(note.text) == "server.py:16 closed fd 5 while still registered (registered at x.py:2)"
    )
    assert zh.render(note.text) == "server.py:16 关闭了 fd 5，而它仍处于注册状态（注册于 x.py:2）"
    wait = trace_note(TraceEvent.from_json({"ev": "poll_wait", "timeout": 0, "at": "s.py:9"}))
    assert "timeout=0 ms" in zh.render(wait.text) and "从不睡眠" in zh.render(wait.text)
    bind = trace_note(TraceEvent.from_json({"ev": "bind", "requested": ["", 8888], "fd": 3}))
    assert zh.render(bind.text) == "程序 把 fd 3 绑定到 所有网络接口 的 8888 端口"
    ending = describe_exit(-signal.SIGXCPU)
    assert zh.render(ending) == "被信号 SIGXCPU 终止（CPU 时间限制）"
    assert zh.render(describe_exit(3)) == "以退出码 3 退出"


def test_a_hand_ins_problem_is_a_message(tmp_path):
    from grader.discover import discover

    (tmp_path / "subs").mkdir()
    (tmp_path / "subs" / "dave.zip").write_bytes(b"not a zip")
    (sub,) = discover(tmp_path / "subs", "server.py", tmp_path / "scratch")
    assert str(sub.problem) == "dave.zip is not a valid zip file"
    assert i18n.Speaker("zh").render(sub.problem) == "dave.zip 不是有效的 zip 文件"


def graded(folder: Path | None = None):
    epoll = load_assignment("epoll")
    sub = Submission("alice", Path("alice"), folder, "server.py", files=("server.py",))
    return score(epoll, sub, RunOutcome(listing_report(), 8.7, "local", {}))


def test_results_json_output_is_markdown_with_reason_line_hint_and_timeline(tmp_path):
    # The hand-in the reason cites: its line is quoted from the file.
    (tmp_path / "server.py").write_text("\n".join(f"line_{i} = {i}" for i in range(1, 40)))
    result = graded(tmp_path)
    data = gradescope_results(result)
    robustness = next(t for t in data["tests"] if t["number"] == "robustness")
    assert robustness["output_format"] == "md"
    reason = str(next(c for c in result.checks if c.spec.id == "robustness").reason)
    out = robustness["output"]
    assert out.startswith(reason)
    cited = re.search(r"server\.py:(\d+)", reason)
    assert cited and f"server.py:{cited.group(1)}: line_{cited.group(1)} = " in out
    assert "\nHint: " in out and "**Timeline**" in out and "```text" in out
    assert len(out) <= TEST_OUTPUT_MAX
    passed = next(t for t in data["tests"] if t["status"] == "passed")
    assert passed["output"] == "Passed."


def test_results_json_in_chinese_and_bounded_whatever_the_timeline(tmp_path):
    result = graded()
    robust = next(c for c in result.checks if c.spec.id == "robustness")
    long_story = robust.story * 200  # a check that did a great deal
    from dataclasses import replace

    result = replace(
        result,
        checks=tuple(
            replace(c, story=long_story) if c.spec.id == "robustness" else c for c in result.checks
        ),
    )
    data = gradescope_results(result, i18n.Speaker("zh"))
    out = next(t for t in data["tests"] if t["number"] == "robustness")["output"]
    assert len(out) <= TEST_OUTPUT_MAX and "时间线" in out and "提示：" in out
    assert "…" in out, "the timeline's middle is left out"
    assert next(t for t in data["tests"] if t["status"] == "passed")["output"] == "通过。"
    assert data["output"].startswith(result.assignment.title.zh)


def test_grader_error_wording_is_kept():
    epoll = load_assignment("epoll")
    sub = Submission("bob", Path("bob"), Path("bob"), "server.py")
    error = no_report(how_it_ended(0))
    result = score(epoll, sub, RunOutcome(None, 1.0, "local", error=error, error_fault="grader"))
    data = gradescope_results(result)
    for test in data["tests"]:
        assert test["output"].startswith(
            "GRADER ERROR: the grader's harness ended (code 0) without a report\n"
            "This is a fault of the grader or the grading machine, not of the submitted code"
        )
    zh = gradescope_results(result, i18n.Speaker("zh"))
    assert zh["tests"][0]["output"].startswith("评分器错误：评测框架结束（退出码 0），没有写出报告")
