"""Every sentence a student or TA reads has its translation, and a translation cannot change
what a sentence measures."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from grader import catalogue, i18n
from grader.contract import Message, join, msg, verbatim

PACKAGE = Path(catalogue.__file__).resolve().parent


def test_every_sentence_has_its_translation():
    missing = list(catalogue.problems("zh"))
    assert not missing, "\n".join(missing[:40]) + f"\n({len(missing)} in all)"


def test_every_msg_call_names_a_literal_template():
    """msg(f"...") or msg(variable) cannot be extracted, so it could never be translated."""
    bad = []
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "msg"
            ):
                first = node.args[0] if node.args else None
                if not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
                    bad.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    assert not bad, f"msg() with a template that is not a string literal: {bad}"


def test_every_msg_call_gives_the_values_its_template_names():
    """A template field without its value would fail at render time, inside the sandbox,
    as a grader error; a value the template does not name is a sentence that lost a fact."""
    bad = []
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "msg"
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                continue
            if any(k.arg is None for k in node.keywords):  # **values: checked when rendered
                continue
            named = {name for name, _ in catalogue.fields(node.args[0].value)}
            given = {k.arg for k in node.keywords}
            if named != given:
                bad.append(
                    f"{path.relative_to(PACKAGE)}:{node.lineno}: names {sorted(named)}, "
                    f"given {sorted(given)}"
                )
    assert not bad, "\n".join(bad)


def test_the_catalogue_reads_and_keeps_fields():
    table = i18n.translations("zh")
    assert table, "the zh catalogue is empty"
    for msgid, text in table.items():
        assert catalogue.fields(msgid) == catalogue.fields(text), msgid


def test_a_message_renders_in_each_language_with_the_same_figures():
    m = msg(
        "the server listened on {address} after {seconds:.2f} s",
        address="::1:8888",
        seconds=0.12345,
    )
    zh = i18n.Speaker("zh").render(m)
    en = i18n.Speaker("en").render(m)
    assert en == "the server listened on ::1:8888 after 0.12 s"
    assert "0.12" in zh and "::1:8888" in zh and zh != en
    both = i18n.Speaker("both").renders(m)
    assert [lang for lang, _ in both] == ["zh", "en"]


def test_nested_and_joined_messages_translate_each_part():
    inner = msg("it was running on the CPU")
    outer = join([msg("not judged: see runs"), inner, verbatim("server.py:14")], "; ")
    zh = i18n.Speaker("zh").render(outer)
    assert "server.py:14" in zh and "CPU" in zh and "not judged" not in zh


def test_a_message_survives_json():
    m = msg("not judged: the server did not start: {why}", why=msg("it was running on the CPU"))
    back = Message.from_json(m.to_json())
    assert back == m and str(back) == str(m)
    assert str(Message.from_json("an older report's sentence")) == "an older report's sentence"


def test_a_broken_translation_falls_back_to_english():
    m = msg("not run: {why}", why="x")
    assert m.render(lambda _: "缺少 {other}") == "not run: x"


@pytest.mark.parametrize(
    ("environ", "lang"),
    [
        ({"LANG": "zh_CN.UTF-8"}, "zh"),
        ({"LANG": "en_US.UTF-8"}, "en"),
        ({"LC_ALL": "zh_TW.UTF-8", "LANG": "en_US.UTF-8"}, "zh"),
        ({"LC_MESSAGES": "en_GB", "LANG": "zh_CN"}, "en"),
        ({"LANG": "C.UTF-8"}, "both"),
        ({"LANG": "de_DE.UTF-8"}, "both"),
        ({}, "both"),
    ],
)
def test_the_default_language_follows_the_locale(environ, lang):
    assert i18n.default_lang(environ) == lang


def test_an_unknown_language_is_refused():
    with pytest.raises(ValueError, match="choose one of"):
        i18n.Speaker("fr")
