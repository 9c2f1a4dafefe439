"""The tracer's events and the endings of the student's program as sentences (Messages)."""

from __future__ import annotations

import signal

from grader.contract import Message, ProcessReport, TraceEvent, TraceKind, msg, verbatim
from grader.contract.message import Value
from grader.models import ProgramRun, TraceNote

TRACE_VALUE_MAX = 300  # characters of one tracer value shown (the student writes them)


def _v(value) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= TRACE_VALUE_MAX else text[:TRACE_VALUE_MAX] + " …"


def _where(e: TraceEvent) -> Value:
    return _v(e.at) if e.at else msg("the program")


def _address(requested) -> Value:
    if isinstance(requested, (list, tuple)) and len(requested) >= 2:
        host, port = requested[0], requested[1]
        return msg(
            "port {port} on {host}", port=_v(port), host=_v(host) if host else msg("all interfaces")
        )
    return _v(requested)


def _selector(e: TraceEvent, default: Message) -> Value:
    """The selector's class as the tracer named it (code), or a word for it."""
    name = e.get("selector")
    return _v(name) if name else default


def _wait(e: TraceEvent) -> Message:
    """A select()/poll() call: whether the loop sleeps in it, from its timeout."""
    unit = " ms" if e.known is TraceKind.POLL_WAIT else ""
    call: Value
    if e.known is TraceKind.POLL_WAIT:
        call = msg("poll object's poll")
    elif e.known is TraceKind.EPOLL_WAIT:
        call = msg("epoll object's poll")
    elif e.known is TraceKind.SELECT:  # selectors.*: the tracer names the selector's class
        call = f"{_v(e.get('selector') or 'selector')}.select"
    else:  # a plain select.select() call
        call = "select.select"
    timeout = e.get("timeout")
    no_timeout = timeout is None or (
        e.known in (TraceKind.POLL_WAIT, TraceKind.EPOLL_WAIT)
        and isinstance(timeout, (int, float))
        and timeout < 0
    )
    where = _where(e)
    if no_timeout:
        return msg(
            "{where} waits in {call}() with no timeout (sleeps until an event)",
            where=where,
            call=call,
        )
    if e.never_sleeps:
        return msg(
            "{where} calls {call}(timeout={timeout}{unit}), which returns at once: "
            "the loop never sleeps",
            where=where,
            call=call,
            timeout=_v(timeout),
            unit=unit,
        )
    return msg(
        "{where} waits in {call}(timeout={timeout}{unit})",
        where=where,
        call=call,
        timeout=_v(timeout),
        unit=unit,
    )


def _fd(e: TraceEvent) -> str:
    return _v(e.get("fd", "?"))


def _listen(e: TraceEvent) -> Message:
    if e.get("backlog") is None:
        return msg("{where} listens on fd {fd}", where=_where(e), fd=_fd(e))
    return msg(
        "{where} listens on fd {fd} (backlog {backlog})",
        where=_where(e),
        fd=_fd(e),
        backlog=_v(e.get("backlog")),
    )


def _close_registered(e: TraceEvent) -> Message:
    if not e.get("registered_at"):
        return msg("{where} closed fd {fd} while still registered", where=_where(e), fd=_fd(e))
    return msg(
        "{where} closed fd {fd} while still registered (registered at {registered_at})",
        where=_where(e),
        fd=_fd(e),
        registered_at=_v(e.get("registered_at")),
    )


def _thread(e: TraceEvent) -> Message:
    if not e.get("name"):
        return msg("{where} started a thread", where=_where(e))
    return msg("{where} started a thread ({name})", where=_where(e), name=_v(e.get("name")))


def _crash(e: TraceEvent) -> Message:
    kind = e.get("type")
    raised: Value = _v(kind) if kind is not None else msg("an exception")
    if not e.get("message"):
        return msg("{where} raised {type} and the program stopped", where=_where(e), type=raised)
    return msg(
        "{where} raised {type}: {message} and the program stopped",
        where=_where(e),
        type=raised,
        message=_v(e.get("message")),
    )


def _setblocking(e: TraceEvent) -> Message:
    if e.get("flag"):
        return msg("{where} made fd {fd} blocking", where=_where(e), fd=_fd(e))
    return msg("{where} made fd {fd} non-blocking", where=_where(e), fd=_fd(e))


def _start(e: TraceEvent) -> Message:
    entry = e.get("entry")
    return msg("started {entry}", entry=_v(entry) if entry is not None else msg("the program"))


# Words for a selector whose class the tracer did not name.
SELECTOR, THE_SELECTOR = msg("selector"), msg("the selector")

K = TraceKind
# One rule per tracer event, as a table (what each event means in a sentence).
TRACE_NOTES = {
    K.START: _start,
    K.BIND: lambda e: msg(
        "{where} bound fd {fd} to {address}",
        where=_where(e),
        fd=_fd(e),
        address=_address(e.get("requested")),
    ),
    K.LISTEN: _listen,
    K.REGISTER: lambda e: msg(
        "{where} registered fd {fd} with {selector}",
        where=_where(e),
        fd=_fd(e),
        selector=_selector(e, THE_SELECTOR),
    ),
    K.UNREGISTER: lambda e: msg("{where} unregistered fd {fd}", where=_where(e), fd=_fd(e)),
    K.MODIFY: lambda e: msg(
        "{where} changed the events watched on fd {fd}", where=_where(e), fd=_fd(e)
    ),
    K.CLOSE: lambda e: msg("{where} closed fd {fd}", where=_where(e), fd=_fd(e)),
    K.CLOSE_REGISTERED: _close_registered,
    K.SELECTOR_NEW: lambda e: msg(
        "{where} made a {selector}", where=_where(e), selector=_selector(e, SELECTOR)
    ),
    K.SELECT: _wait,
    K.SELECTOR_CLOSE: lambda e: msg(
        "{where} closed its {selector}", where=_where(e), selector=_selector(e, SELECTOR)
    ),
    K.SELECT_CALL: _wait,
    K.POLL_NEW: lambda e: msg("{where} made a select.poll() object", where=_where(e)),
    K.POLL_REGISTER: lambda e: msg(
        "{where} registered fd {fd} with its poll object", where=_where(e), fd=_fd(e)
    ),
    K.POLL_UNREGISTER: lambda e: msg(
        "{where} unregistered fd {fd} from its poll object", where=_where(e), fd=_fd(e)
    ),
    K.POLL_MODIFY: lambda e: msg(
        "{where} changed the events its poll object watches on fd {fd}", where=_where(e), fd=_fd(e)
    ),
    K.POLL_WAIT: _wait,
    K.EPOLL_NEW: lambda e: msg(
        "{where} made a select.epoll() object (fd {epfd})", where=_where(e), epfd=_v(e.get("epfd"))
    ),
    K.EPOLL_REGISTER: lambda e: msg(
        "{where} registered fd {fd} with its epoll object", where=_where(e), fd=_fd(e)
    ),
    K.EPOLL_UNREGISTER: lambda e: msg(
        "{where} unregistered fd {fd} from its epoll object", where=_where(e), fd=_fd(e)
    ),
    K.EPOLL_MODIFY: lambda e: msg(
        "{where} changed the events its epoll object watches on fd {fd}",
        where=_where(e),
        fd=_fd(e),
    ),
    K.EPOLL_WAIT: _wait,
    K.EPOLL_CLOSE: lambda e: msg(
        "{where} closed its epoll object (fd {epfd})", where=_where(e), epfd=_v(e.get("epfd"))
    ),
    K.BLOCKING_CALL: lambda e: msg(
        "{where} calls {call}() on fd {fd}, a blocking socket: it waits there",
        where=_where(e),
        call=_v(e.get("call", "a call")),
        fd=_fd(e),
    ),
    K.SETBLOCKING: _setblocking,
    K.SETTIMEOUT: lambda e: msg(
        "{where} set a timeout of {value} s on fd {fd}",
        where=_where(e),
        value=_v(e.get("value")),
        fd=_fd(e),
    ),
    K.THREAD: _thread,
    K.FORK: lambda e: msg("{where} forked a child process", where=_where(e)),
    K.CRASH: _crash,
    K.EXIT: lambda e: msg("the program exited (code {code})", code=_v(e.get("code"))),
    K.TRACER_ERROR: lambda e: msg(
        "the tracer could not be installed: {error}", error=_v(e.get("error", ""))
    ),
}
# Events that point at a fault (a wait that never sleeps does too: see never_sleeps).
ALARMING = {K.CLOSE_REGISTERED, K.CRASH, K.THREAD, K.FORK, K.TRACER_ERROR}


def trace_note(event: TraceEvent) -> TraceNote:
    """One tracer event as a sentence; an unknown event is shown as it came."""
    kind = event.known
    rule = TRACE_NOTES.get(kind) if kind is not None else None
    if rule is None:
        if not event.kind and set(event.fields) == {"value"}:
            return TraceNote(verbatim(_v(event.fields["value"])))
        shown = dict(event.fields, **({"at": event.at} if event.at else {}))
        fields = ", ".join(f"{k}={_v(v)}" for k, v in shown.items())
        name = _v(event.kind or "other")
        return TraceNote(verbatim(f"{name}: {fields}" if fields else name))
    return TraceNote(
        rule(event),
        kind.value if kind is not None else "other",
        kind in ALARMING or event.never_sleeps,
    )


# --- one run of the student's program -------------------------------------------------------

# What a signal that ends the student's program says about which bound it hit.
SIGNAL_CAUSES = {
    signal.SIGXFSZ: msg("the file-size limit"),
    signal.SIGXCPU: msg("the CPU-time limit"),
    signal.SIGKILL: msg("most often a sandbox limit: memory or processes"),
    signal.SIGSEGV: msg("a crash of the interpreter"),
}


def describe_exit(code: int | None, ended_by: str = "") -> Message:
    """How a run ended, as a phrase: by itself (its exit code), stopped by the grader once
    its check was over, killed by the kit (and why), or killed by a signal (and which bound
    that signal means). The harness gives -N for "killed by signal N"."""
    if ended_by == "grader":
        return msg(
            "stopped by the grader after its check (it was still running, as a server should)"
        )
    if ended_by:
        return msg("killed by the kit ({why})", why=ended_by)
    if code is None:
        return msg("still running when the check ended")
    if code >= 0:
        return msg("exited with code {code}", code=code)
    try:
        name = signal.Signals(-code).name
    except ValueError:
        return msg("killed by signal {signal}", signal=str(-code))
    cause = SIGNAL_CAUSES.get(signal.Signals(-code))
    if cause is None:
        return msg("killed by signal {signal}", signal=name)
    return msg("killed by signal {signal} ({cause})", signal=name, cause=cause)


def program_run(proc: ProcessReport) -> ProgramRun:
    return ProgramRun(
        stdout=proc.stdout,
        stderr=proc.stderr,
        output_bytes=proc.output_bytes,
        exit=describe_exit(proc.exit_code, proc.ended_by),
        notes=tuple(trace_note(e) for e in proc.trace),
    )
