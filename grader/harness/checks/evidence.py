"""How a server waits, in words: the kernel's account of where it sleeps (select, poll, epoll,
a blocking call, or nowhere: a busy loop) joined with the tracer's account of the student's
lines, for selectors of every kind, select.select, select.poll and select.epoll alike.

The kernel decides; the trace only names the line (the student controls that process)."""

from __future__ import annotations

import time

from grader.contract import Message, msg
from grader.harness import procobs
from grader.harness.plugin import Server
from grader.harness.timing import BUSY_TIMEOUT, SPIN_LOOK, SPIN_SAMPLES

# The mechanism behind each selectors class (DefaultSelector is one of these).
MECHANISM_OF_SELECTOR = {
    "SelectSelector": "select",
    "PollSelector": "poll",
    "EpollSelector": "epoll",
    "DevpollSelector": "devpoll",
    "KqueueSelector": "kqueue",
}
# Trace events that create a wait object, and the mechanism each belongs to (None: from
# the event's selector class).
CREATED = {"selector_new": None, "poll_new": "poll", "epoll_new": "epoll"}
# Trace events of one wait call: the mechanism, how the student wrote the call, and the
# unit of its timeout (a selectors select(), select.select and epoll.poll count seconds,
# select.poll's poll() milliseconds).
WAITS = {
    "select": (None, "select(timeout={t})", 1.0),
    "select_call": ("select", "select.select(..., {t})", 1.0),
    "poll_wait": ("poll", "poll({t})", 1000.0),
    "epoll_wait": ("epoll", "epoll.poll({t})", 1.0),
}
# Registrations and the bit of their events that asks for writability: selectors'
# EVENT_WRITE, select.poll's POLLOUT and select.epoll's EPOLLOUT.
WRITE_BIT = {
    "register": 2,
    "modify": 2,
    "poll_register": 4,
    "poll_modify": 4,
    "epoll_register": 4,
    "epoll_modify": 4,
}
# Events after which a descriptor is watched no more.
FORGETS = {"unregister", "poll_unregister", "epoll_unregister", "close", "close_registered"}
# Every event that shows the program uses some selector or readiness call (a selector made
# and never used is not one: the standard library makes some of its own).
SELECTOR_EVENTS = {"register", "modify", "poll_register", "epoll_register"} | set(WAITS)


def mechanism_of(event: dict) -> str | None:
    """The readiness mechanism a trace event belongs to, or None if it is not about one."""
    kind = event.get("ev")
    if kind in CREATED:
        return CREATED[kind] or MECHANISM_OF_SELECTOR.get(event.get("selector", ""))
    if kind in WAITS:
        return WAITS[kind][0] or MECHANISM_OF_SELECTOR.get(event.get("selector", ""))
    if kind in ("register", "modify"):
        return MECHANISM_OF_SELECTOR.get(event.get("selector", ""))
    if kind in ("poll_register", "epoll_register"):
        return kind.split("_")[0]
    return None


def is_busy(event: dict) -> bool:
    """A wait whose timeout returns at once: a loop around it never sleeps. A selectors
    select() with a timeout <= 0 polls; select.poll and select.epoll block on a negative one."""
    kind = event.get("ev")
    timeout = event.get("timeout")
    if kind not in WAITS or isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        return False
    seconds = timeout / WAITS[kind][2]
    if kind == "select":
        return seconds <= BUSY_TIMEOUT
    return 0 <= seconds <= BUSY_TIMEOUT


def call_text(event: dict) -> str:
    """The wait call as the student wrote it: 'select(timeout=0)', 'poll(0)'."""
    return WAITS[event["ev"]][1].format(t=event.get("timeout"))


def busy_waits(trace: list[dict]) -> list[dict]:
    return [e for e in trace if is_busy(e)]


def busy_because(server: Server) -> Message:
    """'; server.py:31 (`...`) calls select(timeout=0), which returns at once, so the loop
    never sleeps', or an empty Message when the trace shows no such call."""
    busy = busy_waits(server.proc.trace())
    if not busy:
        return Message("")
    e = busy[0]
    return msg(
        "; {site} calls {call}, which returns at once, so the loop never sleeps",
        site=server.proc.quote(e.get("at")),
        call=call_text(e),
    )


def spinning_because(server: Server) -> Message:
    """Why a busy server never sleeps: its zero-timeout wait call where traced; else its
    wait call that returns at once every time because something it watches stays ready;
    else the line its interpreter stands at while it spins, asked of it then."""
    busy = busy_because(server)
    if busy:
        return busy
    trace = server.proc.trace()
    writing = write_interest(trace)
    if writing:
        return msg(
            "; it watches fd {fd} for writing, registered at {site}: a connected socket can "
            "almost always be written, so its wait returns at once",
            fd=str(writing.get("fd")),
            site=server.proc.quote(writing.get("at")),
        )
    waits = [e for e in trace if e.get("ev") in WAITS and e.get("at")]
    if waits:
        return msg(
            "; its wait at {site} did not make it sleep, so something it watches is likely "
            "always ready (a socket at end of stream that is never closed and unregistered "
            "stays readable)",
            site=server.proc.quote(waits[-1]["at"]),
        )
    site = spinning_site(server)
    if site:
        return msg("; it spins at {site}", site=server.proc.quote(site))
    return Message("")


def write_interest(trace: list[dict]) -> dict | None:
    """The latest registration (selectors, poll or epoll) that watched a descriptor for
    writing until the descriptor was dropped or to this day: a loop that waits on it wakes at
    once, every time. One that asked for writing and then modified it away (waiting to flush
    a reply, as it should) is not it."""
    live: dict[object, dict] = {}
    found: dict | None = None
    for e in trace:
        kind, fd = e.get("ev"), e.get("fd")
        if kind in WRITE_BIT:
            events = e.get("events")
            if (
                isinstance(events, int)
                and not isinstance(events, bool)
                and events & WRITE_BIT[kind]
            ):
                live[fd] = e
            else:
                live.pop(fd, None)
        elif kind in FORGETS and fd in live:
            found = live.pop(fd)
    return list(live.values())[-1] if live else found


def spinning_site(server: Server) -> str | None:
    """The student's line a busy server runs when the kit asks, sampled while the kernel
    shows it running (a loop that slept in between would name its wait instead)."""
    for _ in range(SPIN_SAMPLES):
        if procobs.where(server.pid).get("state") == "R":
            return server.proc.stack_site()
        if not server.alive():
            return None
        time.sleep(SPIN_LOOK)
    return None


def uses(trace: list[dict]) -> list[str]:
    """What the program waits with, from the trace: 'SelectSelector', 'select.poll()'."""
    out: dict[str, None] = {}
    for e in trace:
        kind = e.get("ev")
        if e.get("selector") and kind in ("register", "select", "selector_new"):
            out[e["selector"]] = None
        elif kind in ("select_call", "poll_new", "epoll_new"):
            out[
                {
                    "select_call": "select.select()",
                    "poll_new": "select.poll()",
                    "epoll_new": "select.epoll()",
                }[kind]
            ] = None
    return list(out)


def uses_any_selector(trace: list[dict]) -> bool:
    return any(e.get("ev") in SELECTOR_EVENTS for e in trace)


def created_at(trace: list[dict], mechanism: str) -> tuple[Message, str | None] | None:
    """(what, site) of the first object of this mechanism the program made: ('the
    EpollSelector', 'server.py:12'); failing that, of its first wait call."""
    for e in trace:
        if e.get("ev") in CREATED and mechanism_of(e) == mechanism:
            what = (
                msg("the {selector}", selector=e["selector"])
                if e.get("selector")
                else msg("the select.{kind}() object", kind=e["ev"].split("_")[0])
            )
            return what, e.get("at")
    for e in trace:
        if e.get("ev") in WAITS and mechanism_of(e) == mechanism:
            return msg("the {call} call", call=call_text(e)), e.get("at")
    return None


def wait_site(trace: list[dict], mechanism: str) -> str | None:
    """The line of the program's latest wait call of this mechanism."""
    for e in reversed(trace):
        if e.get("ev") in WAITS and mechanism_of(e) == mechanism and e.get("at"):
            return e["at"]
    return None


def blocking_site(trace: list[dict], fd: int | None) -> dict | None:
    """The program's latest blocking accept()/recv() on this descriptor, as traced."""
    for e in reversed(trace):
        if e.get("ev") == "blocking_call" and (fd is None or e.get("fd") == fd):
            return e
    return None


def asleep_in(server: Server, mechanism: str) -> Message:
    """'asleep in select() (server.py:31 (`...`))'; for epoll, with the line that made the
    epoll object: 'asleep in epoll_wait() (the EpollSelector created at server.py:12 ...)'.
    Where the trace has no line, the line the interpreter stands at, asked of it."""
    trace = server.proc.trace()
    call = procobs.WAIT_CALL.get(mechanism, mechanism)
    made = created_at(trace, mechanism)
    site = wait_site(trace, mechanism)
    if made and made[1] and (mechanism == "epoll" or not site):
        what, at = made
        return msg(
            "asleep in {call} ({what} created at {site})",
            call=call,
            what=what,
            site=server.proc.quote(at),
        )
    site = site or server.proc.stack_site()
    if site:
        return msg("asleep in {call} ({site})", call=call, site=server.proc.quote(site))
    return msg("asleep in {call}", call=call)


def waiting(
    server: Server, names: dict[int, Message] | None = None, info: dict | None = None
) -> Message:
    """Where the server waits, in words, naming the mechanism and the student's line: 'asleep
    in select() (server.py:31 (`...`))', 'blocked in recvfrom() on client A's connection
    (fd 5) at server.py:20 (`...`)', 'running (busy on the CPU) at server.py:40 (`...`)'.
    The kernel says where it waits; the line is the tracer's, else the one the interpreter
    stands at when asked (stackdump.py); without either, the kernel's words alone."""
    info = procobs.where(server.pid) if info is None else info
    mechanism = procobs.wait_mechanism(server.pid, info)
    if mechanism is not None:
        return asleep_in(server, mechanism)
    # As Server.blocked_on says it, from the same look as the mechanism.
    text = procobs.describe_wait(server.pid, server.known_fds(names), info)
    site = None
    if info.get("syscall") in ("accept", "accept4", "recvfrom", "recvmsg", "read"):
        call = blocking_site(server.proc.trace(), info.get("fd"))
        site = call.get("at") if call else None
    site = site or server.proc.stack_site()
    if site:
        return msg("{where} at {site}", where=text, site=server.proc.quote(site))
    return text
