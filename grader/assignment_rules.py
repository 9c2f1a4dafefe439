"""The rules an assignment folder follows: the common tags, and validation of its files."""

from __future__ import annotations

import json
import keyword
import math
import re
from pathlib import Path

from grader import requires
from grader.assignment_files import Files, check_functions, pairing_problems, read_meta
from grader.contract import Message, msg, verbatim
from grader.models import VISIBILITIES, Assignment, CheckSpec, Text

# The tags every assignment may use without declaring them: the properties the kit's own
# checks judge (DESIGN.md, "Check tags"). An assignment declares any other tag it uses in its
# assignment.toml as [tags.<name>] with `en` and `zh`; the list is documented, not closed.
COMMON_TAGS: dict[str, Text] = {
    "runs": Text(
        "starts and listens (client: runs to completion) within the start bound",
        "能在启动时限内启动并监听(客户端:能运行结束)",
    ),
    "echo": Text(
        "every message comes back intact: several per connection, sizes up to 64 KiB, "
        "read until complete",
        "每条消息都原样返回:同一连接多条消息,最大 64 KiB,读到完整为止",
    ),
    "disconnect": Text(
        "keeps serving after clients leave, one after another", "客户端依次离开后仍能继续服务"
    ),
    "concurrency": Text(
        "a connected, silent client blocks nobody; many clients at once are all served",
        "一个已连接却不发消息的客户端不会阻塞别人;同时连接的多个客户端都能得到服务",
    ),
    "nonblocking": Text(
        "sockets really are non-blocking and BlockingIOError is handled, not fatal",
        "套接字确实是非阻塞的,BlockingIOError 被处理而不是导致崩溃",
    ),
    "unregister": Text(
        "every closed connection was unregistered from the selector first; nothing stale remains",
        "每个关闭的连接都先从选择器注销;不留下失效的注册",
    ),
    "idle_cpu": Text(
        "near-zero CPU while idle (asleep in the kernel's wait): fresh, with silent "
        "clients, and after clients have left",
        "空闲时 CPU 接近零(睡在内核的等待里):刚启动、有不发消息的客户端、客户端离开后都是如此",
    ),
    "single_thread": Text("one thread, no child processes", "单线程,没有子进程"),
    "uses_epoll": Text(
        "the event loop is epoll: an eventpoll instance whose interest list holds "
        "the listening socket and the live connections",
        "事件循环基于 epoll:一个 eventpoll 实例,其关注列表包含监听套接字和活动连接",
    ),
    "cleanup": Text(
        "open file descriptors return to baseline after many connect/disconnect cycles",
        "多次连接/断开之后,打开的文件描述符回到基线",
    ),
    "robustness": Text(
        "beyond the tutorial: peer reset, slow reader (backpressure), non-UTF-8 bytes, half-close",
        "超出教程的要求:对端重置、慢速读取方(背压)、非 UTF-8 字节、半关闭",
    ),
    "connect_wait": Text(
        "(client) waits until the connection is up before sending, even when the handshake is slow",
        "(客户端)即使握手很慢,也等连接建立后再发送",
    ),
}

KINDS = ("server", "client")
LANGUAGES = ("en", "zh")
TOP_KEYS = ("name", "title", "entry", "kind", "tags", "checks")
CHECK_KEYS = ("id", "tags", "points", "visibility", "title", "explain", "hint", "requires")
CHECK_TEXTS = ("title", "explain", "hint")
DEFAULTS = {"entry": "server.py", "kind": "server", "visibility": "visible"}
# A tag is shown as a badge and is a key in results.json: short, lower case, no spaces.
TAG_NAME = re.compile(r"[a-z][a-z0-9_]*\Z")


def quoted(value) -> str:
    """A value as its TOML would spell it (double quotes, as written), not as Python's repr."""
    return json.dumps(value, ensure_ascii=False, default=str)


def _text_problems(value, where: str, key: str) -> list[Message]:
    """A text in both languages: a table with a non-empty `en` and `zh` string."""
    if not isinstance(value, dict):
        return [
            msg(
                '{where}{key} must be a table with "en" and "zh" texts, not {value}',
                where=where,
                key=key,
                value=quoted(value),
            )
        ]
    problems = [
        msg('{where}{key} has no "{lang}" text', where=where, key=key, lang=lang)
        for lang in LANGUAGES
        if not isinstance(value.get(lang), str) or not value[lang].strip()
    ]
    problems += [
        msg(
            '{where}{key} has an unknown key "{name}" (the kit shows only {langs})',
            where=where,
            key=key,
            name=k,
            langs=" and ".join(LANGUAGES),
        )
        for k in value
        if k not in LANGUAGES
    ]
    return problems


def _unknown_keys(table: dict, known: tuple[str, ...], where: str) -> list[Message]:
    return [
        msg(
            '{where}unknown key "{name}" (known: {known})',
            where=where,
            name=k,
            known=", ".join(known),
        )
        for k in table
        if k not in known
    ]


def _declared_tags(data: dict, where: str) -> tuple[dict[str, Text], list[Message]]:
    raw = data.get("tags", {})
    if not isinstance(raw, dict):
        return {}, [
            msg(
                '{where}tags must be tables such as [tags.uses_select] with "en" and '
                '"zh", not {value}',
                where=where,
                value=quoted(raw),
            )
        ]
    declared: dict[str, Text] = {}
    problems: list[Message] = []
    for name, value in raw.items():
        if not TAG_NAME.match(name):
            problems.append(
                msg(
                    "{where}tags.{name}: a tag name is lower-case letters, digits and "
                    "underscores, starting with a letter",
                    where=where,
                    name=name,
                )
            )
        found = _text_problems(value, where, f"tags.{name}")
        problems += found
        if not found:
            declared[name] = Text.of(value)
    return declared, problems


def _points_problem(raw: dict, where: str) -> Message | None:
    if "points" not in raw:
        return msg(
            "{where}points is missing (a number >= 0; 0 for a check shown for information)",
            where=where,
        )
    points = raw["points"]
    # TOML's true is a bool, which Python also counts as an int: never a number of points.
    if (
        isinstance(points, bool)
        or not isinstance(points, (int, float))
        or not math.isfinite(points)
        or points < 0
    ):
        return msg(
            "{where}points must be a number >= 0, not {value}", where=where, value=quoted(points)
        )
    return None


def _check_problems(
    index: int, raw, tags: dict[str, Text], where: str, seen: dict[str, int]
) -> list[Message]:
    if not isinstance(raw, dict):
        return [
            msg(
                "{where}checks[{index}] must be a [[checks]] table, not {value}",
                where=where,
                index=index,
                value=quoted(raw),
            )
        ]
    ident = raw.get("id")
    if not isinstance(ident, str) or not ident:
        return [
            msg(
                '{where}checks[{index}] has no id (a string such as "echo")',
                where=where,
                index=index,
            )
        ]
    at = f"{where}checks[{index}] ({ident}): "
    problems = _unknown_keys(raw, CHECK_KEYS, at)
    if not ident.isidentifier() or keyword.iskeyword(ident):
        problems.append(
            msg(
                '{at}id "{id}" is not a Python name, so checks.py cannot define test_{id}',
                at=at,
                id=ident,
            )
        )
    if ident in seen:
        problems.append(
            msg(
                '{at}id "{id}" is already the id of checks[{index}]',
                at=at,
                id=ident,
                index=seen[ident],
            )
        )
    else:
        seen[ident] = index
    points = _points_problem(raw, at)
    if points:
        problems.append(points)
    visibility = raw.get("visibility", DEFAULTS["visibility"])
    if visibility not in VISIBILITIES:
        problems.append(
            msg(
                "{at}visibility {value} must be one of {known}",
                at=at,
                value=quoted(visibility),
                known=", ".join(VISIBILITIES),
            )
        )
    for key in CHECK_TEXTS:
        if key not in raw:
            problems.append(
                msg('{where}{key} is missing (a table with "en" and "zh" texts)', where=at, key=key)
            )
        else:
            problems += _text_problems(raw[key], at, key)
    check_tags = raw.get("tags", [ident])
    if (
        not isinstance(check_tags, list)
        or not check_tags
        or not all(isinstance(t, str) for t in check_tags)
    ):
        return [
            *problems,
            msg(
                "{at}tags must be a non-empty list of tag names, not {value}",
                at=at,
                value=quoted(check_tags),
            ),
        ]
    implicit = (
        verbatim("")
        if "tags" in raw
        else msg(" (a check without a tags key is tagged with its id)")
    )
    for tag in check_tags:
        if tag not in COMMON_TAGS and tag not in tags:
            problems.append(
                msg(
                    '{at}tag "{tag}"{implicit} is neither a common tag nor declared '
                    'as [tags.{tag}] with "en" and "zh"',
                    at=at,
                    tag=tag,
                    implicit=implicit,
                )
            )
    return problems


def _meta_problems(data: dict, files: Files, name: str) -> list[Message]:
    where = f"{files.meta_shown}: "
    problems = _unknown_keys(data, TOP_KEYS, where)
    if "name" in data and data["name"] != name:
        problems.append(
            msg(
                "{where}name {value} is not the folder's name {folder} (an assignment is "
                "called by its folder's name: rename one, or drop name)",
                where=where,
                value=quoted(data["name"]),
                folder=quoted(name),
            )
        )
    if "title" not in data:
        problems.append(
            msg(
                '{where}{key} is missing (a table with "en" and "zh" texts)',
                where=where,
                key="title",
            )
        )
    else:
        problems += _text_problems(data["title"], where, "title")
    entry = data.get("entry", DEFAULTS["entry"])
    if (
        not isinstance(entry, str)
        or Path(entry).name != entry
        or entry in (".", "..")
        or not entry.endswith(".py")
        or entry == ".py"
        or "\\" in entry
    ):
        problems.append(
            msg(
                '{where}entry {value} must be a plain file name ending in .py, such as "server.py"',
                where=where,
                value=quoted(entry),
            )
        )
    kind = data.get("kind", DEFAULTS["kind"])
    if kind not in KINDS:
        problems.append(
            msg('{where}kind {value} must be "server" or "client"', where=where, value=quoted(kind))
        )
    tags, tag_problems = _declared_tags(data, where)
    problems += tag_problems
    checks = data.get("checks")
    if checks is None:
        problems.append(
            msg("{where}checks is missing: declare each check as a [[checks]] table", where=where)
        )
    elif not isinstance(checks, list) or not checks:
        problems.append(
            msg(
                "{where}checks must be one or more [[checks]] tables, not {value}",
                where=where,
                value=quoted(checks),
            )
        )
    else:
        seen: dict[str, int] = {}
        for index, raw in enumerate(checks):
            problems += _check_problems(index, raw, tags, where, seen)
        if all(isinstance(raw, dict) and isinstance(raw.get("id"), str) for raw in checks):
            problems += requires.problems(checks, where)
    return problems


def validate(files: Files, name: str) -> tuple[Assignment | None, dict[str, Text], list[Message]]:
    """(the assignment, the meaning of each tag its checks use, every problem found). The
    assignment is None when there is any problem: a half-valid one is never graded with.
    Only assignment.toml and checks.py are read: an installed kit carries nothing else."""
    data, problems = read_meta(files)
    functions, fn_problems = check_functions(files)
    if data is None:
        return None, {}, problems + fn_problems
    problems = _meta_problems(data, files, name) + fn_problems
    if functions is not None:
        problems += pairing_problems(data, files, functions)
    if problems:
        return None, {}, problems
    declared, _ = _declared_tags(data, "")
    checks = tuple(
        CheckSpec(
            id=raw["id"],
            tags=tuple(raw.get("tags", [raw["id"]])),
            points=float(raw["points"]),
            visibility=raw.get("visibility", DEFAULTS["visibility"]),
            title=Text.of(raw["title"]),
            explain=Text.of(raw["explain"]),
            hint=Text.of(raw["hint"]),
            requires=tuple(raw.get("requires", ())),
        )
        for raw in data["checks"]
    )
    meanings = {**COMMON_TAGS, **declared}
    used = {tag: meanings[tag] for spec in checks for tag in spec.tags}
    assignment = Assignment(
        name=name,
        title=Text.of(data["title"]),
        entry=data.get("entry", DEFAULTS["entry"]),
        kind=data.get("kind", DEFAULTS["kind"]),
        checks=checks,
        folder=files.folder,
    )
    return assignment, used, []
