"""Student-side launcher: runs the submission's entry file with a tracer loaded.

This file is run by the student's own interpreter (``python -I -S -u boot.py ENTRY ARGS``),
so it imports nothing from the kit and must never break the program it hosts: every hook
swallows its own errors.  What it writes is *explanation*, never evidence for a pass: the
student controls this process and can switch the tracer off.

Environment (read once, then removed so the submission does not see it):
  SG_TRACE      file to append JSON lines to
  SG_ROOT       the submission folder: frames in it are "the student's code"
  SG_PORT_ZERO  "1": a TCP bind to a fixed port binds to an ephemeral one instead, so that
                several gradings never collide and a restart never meets TIME_WAIT; the
                grader finds the real port from the kernel.

Events ("ev"), each with the student's "file:line" as "at" where it has one:
  sockets: bind listen close close_registered setblocking settimeout blocking_call;
  selectors (every class; DefaultSelector is one): selector_new register unregister modify
  select selector_close; select.select: select_call; select.poll: poll_new poll_register
  poll_unregister poll_modify poll_wait; select.epoll: epoll_new epoll_register
  epoll_unregister epoll_modify epoll_wait epoll_close; start thread fork crash exit
  tracer_error. A wait is written once per call site and timeout (loops repeat them).
"""

import json
import os
import runpy
import sys
import threading
import time
from types import FrameType
from typing import ClassVar

MAX_EVENTS = 5000

_env = {k: os.environ.pop(k, "") for k in ("SG_TRACE", "SG_ROOT", "SG_PORT_ZERO")}
_root = os.path.realpath(_env["SG_ROOT"] or os.getcwd())
_out = None
_count = 0
_lock = threading.Lock()
_guard = threading.local()
_registered: dict[
    int, tuple[int, str | None]
] = {}  # fd -> (selector id, "file:line" where it was registered)
_seen_select: set[tuple] = set()
_seen_blocking: dict[
    tuple, int | None
] = {}  # (call, "file:line") -> the fd of the last blocking call traced there
MAX_SITES = 50  # distinct wait sites (and blocking-call sites) traced: loops repeat them


def _open_trace():
    global _out
    if _env["SG_TRACE"]:
        try:
            _out = open(_env["SG_TRACE"], "a", buffering=1, encoding="utf-8")
        except OSError:
            _out = None


def _site():
    """The innermost frame of the student's own code, as 'server.py:16'."""
    frame: FrameType | None = sys._getframe(2)
    while frame is not None:
        path = frame.f_code.co_filename
        if path.startswith(_root + os.sep):
            return f"{os.path.relpath(path, _root)}:{frame.f_lineno}"
        frame = frame.f_back
    return None


def _emit(ev, **fields):
    global _count
    if _out is None:
        return
    try:
        with _lock:
            if _count >= MAX_EVENTS:
                return
            _count += 1
            fields["ev"] = ev
            fields["t"] = round(time.monotonic(), 4)
            _out.write(json.dumps(fields, default=repr) + "\n")
    except Exception:
        pass


def _fd_of(obj):
    try:
        return obj if isinstance(obj, int) else obj.fileno()
    except Exception:
        return -1


def _wait_seen(kind, site, timeout):
    """Whether a wait at this site with this timeout was traced already (then skip it)."""
    key = (kind, site, timeout if isinstance(timeout, (int, float, type(None))) else repr(timeout))
    if key in _seen_select or len(_seen_select) >= MAX_SITES:
        return True
    _seen_select.add(key)
    return False


def _forget_selector(owner):
    """A closed selector (or poll/epoll object) holds no registrations any more."""
    for fd in [fd for fd, (sel, _) in _registered.items() if sel == owner]:
        _registered.pop(fd, None)


def _outermost(fn):
    """Wrap a selector method so a super() call inside it is not traced twice."""

    def wrapper(self, *args, **kwargs):
        depth = getattr(_guard, "depth", 0)
        _guard.depth = depth + 1
        try:
            return fn(self, depth == 0, *args, **kwargs)
        finally:
            _guard.depth = depth

    return wrapper


def _install():
    import selectors
    import socket

    orig_bind = socket.socket.bind
    orig_close = socket.socket.close
    orig_setblocking = socket.socket.setblocking
    orig_settimeout = socket.socket.settimeout
    orig_listen = socket.socket.listen

    def bind(self, address):
        requested = address
        try:
            if (
                _env["SG_PORT_ZERO"] == "1"
                and self.family in (socket.AF_INET, socket.AF_INET6)
                and self.type == socket.SOCK_STREAM
                and isinstance(address, tuple)
                and len(address) >= 2
                and address[1] not in (0, "0")
            ):
                address = (address[0], 0) + tuple(address[2:])
        except Exception:
            address = requested
        result = orig_bind(self, address)
        _emit(
            "bind",
            fd=_fd_of(self),
            requested=list(requested) if isinstance(requested, tuple) else requested,
            at=_site(),
        )
        return result

    def listen(self, *args):
        result = orig_listen(self, *args)
        _emit("listen", fd=_fd_of(self), backlog=args[0] if args else None, at=_site())
        return result

    def close(self):
        fd = _fd_of(self)
        if fd >= 0 and fd in _registered:
            _emit("close_registered", fd=fd, at=_site(), registered_at=_registered[fd][1])
        elif fd >= 0:
            _emit("close", fd=fd, at=_site())
        return orig_close(self)

    def setblocking(self, flag):
        _emit("setblocking", fd=_fd_of(self), flag=bool(flag), at=_site())
        return orig_setblocking(self, flag)

    def settimeout(self, value):
        _emit("settimeout", fd=_fd_of(self), value=value, at=_site())
        return orig_settimeout(self, value)

    socket.socket.bind = bind
    socket.socket.listen = listen
    socket.socket.close = close
    socket.socket.setblocking = setblocking
    socket.socket.settimeout = settimeout

    impls = [
        getattr(selectors, name)
        for name in (
            "_BaseSelectorImpl",
            "_PollLikeSelector",
            "SelectSelector",
            "PollSelector",
            "EpollSelector",
            "DevpollSelector",
            "KqueueSelector",
        )
        if hasattr(selectors, name)
    ]

    def wrap_keyed(kind):
        """register, unregister, modify: the fd is the returned key's."""

        def wrap(orig):
            @_outermost
            def method(self, outer, fileobj, *args, **kwargs):
                key = orig(self, fileobj, *args, **kwargs)
                if outer:
                    site = _site()
                    if kind == "register":
                        _registered[key.fd] = (id(self), site)
                    elif kind == "unregister":
                        _registered.pop(key.fd, None)
                    more = (
                        {}
                        if kind == "unregister"
                        else {
                            "events": args[0] if args else kwargs.get("events"),
                            "selector": type(self).__name__,
                        }
                    )
                    _emit(kind, fd=key.fd, at=site, **more)
                return key

            return method

        return wrap

    def wrap_select(orig):
        @_outermost
        def select(self, outer, timeout=None):
            if outer:
                site = _site()
                if not _wait_seen("select", site, timeout):
                    _emit("select", timeout=timeout, selector=type(self).__name__, at=site)
            return orig(self, timeout)

        return select

    def wrap_init(orig):
        @_outermost
        def __init__(self, outer, *args, **kwargs):
            orig(self, *args, **kwargs)
            if outer:
                _emit("selector_new", selector=type(self).__name__, at=_site())

        return __init__

    def wrap_close(orig):
        @_outermost
        def close(self, outer):
            try:
                return orig(self)
            finally:
                if outer:
                    _forget_selector(id(self))
                    _emit("selector_close", selector=type(self).__name__, at=_site())

        return close

    for cls in impls:
        for name, wrap in (
            ("register", wrap_keyed("register")),
            ("unregister", wrap_keyed("unregister")),
            ("modify", wrap_keyed("modify")),
            ("select", wrap_select),
            ("__init__", wrap_init),
            ("close", wrap_close),
        ):
            if name in cls.__dict__:
                setattr(cls, name, wrap(cls.__dict__[name]))

    _install_blocking_calls(socket)
    _install_select()

    orig_start = threading.Thread.start

    def start(self):
        _emit("thread", name=self.name, at=_site())
        return orig_start(self)

    threading.Thread.start = start

    orig_fork = getattr(os, "fork", None)
    if orig_fork is not None:

        def fork():
            _emit("fork", at=_site())
            return orig_fork()

        os.fork = fork


def _install_blocking_calls(socket):
    """accept() and recv() on a socket in blocking mode: where a blocking server waits for a
    client. Written once per call site and descriptor; a non-blocking socket costs one
    gettimeout() per call and writes nothing."""

    def wrap(name, orig):
        def call(self, *args, **kwargs):
            try:
                if self.gettimeout() is None:
                    key, fd = (name, _site()), _fd_of(self)
                    if _seen_blocking.get(key) != fd and (
                        key in _seen_blocking or len(_seen_blocking) < MAX_SITES
                    ):
                        _seen_blocking[key] = fd
                        _emit("blocking_call", call=name, fd=fd, at=key[1])
            except Exception:
                pass
            return orig(self, *args, **kwargs)

        return call

    for name in ("accept", "recv", "recv_into", "recvfrom"):
        setattr(socket.socket, name, wrap(name, getattr(socket.socket, name)))


def _install_select():
    """select.select, select.poll objects and select.epoll objects used directly (selectors
    keeps its own references to the originals, so its calls are not traced twice)."""
    import select

    orig_select = getattr(select, "select", None)
    if orig_select is not None:

        def select_(rlist, wlist, xlist, timeout=None):
            site = _site()
            if not _wait_seen("select_call", site, timeout):
                _emit("select_call", timeout=timeout, at=site)
            return orig_select(rlist, wlist, xlist, timeout)

        select.select = select_

    orig_poll = getattr(select, "poll", None)
    if orig_poll is not None:
        select.poll = _poll_factory(orig_poll)

    orig_epoll = getattr(select, "epoll", None)
    if orig_epoll is not None:
        select.epoll = _epoll_class(orig_epoll)


class _Traced:
    """A poll or epoll object whose calls are traced; everything else goes to the real one."""

    # What each traced call is written as (literal kinds: the kit's vocabulary test reads them).
    _events: ClassVar[dict[str, str]] = {}

    def __init__(self, real):
        object.__setattr__(self, "_real", real)

    def __getattr__(self, name):
        if name == "_real":  # not set yet (a half-made object): never recurse
            raise AttributeError(name)
        return getattr(self._real, name)

    def _note(self, what, fd, *args):
        site, number = _site(), _fd_of(fd)
        if what == "register":
            _registered[number] = (id(self), site)
        elif what == "unregister":
            _registered.pop(number, None)
        events = {"events": args[0] if args else None} if what != "unregister" else {}
        _emit(self._events[what], fd=number, at=site, **events, **self._ident())

    def register(self, fd, *args, **kwargs):
        result = self._real.register(fd, *args, **kwargs)
        self._note("register", fd, *args)
        return result

    def unregister(self, fd):
        result = self._real.unregister(fd)
        self._note("unregister", fd)
        return result

    def modify(self, fd, *args, **kwargs):
        result = self._real.modify(fd, *args, **kwargs)
        self._note("modify", fd, *args)
        return result

    def poll(self, timeout=None, *args, **kwargs):
        site = _site()
        if not _wait_seen(self._events["wait"], site, timeout):
            _emit(self._events["wait"], timeout=timeout, at=site, **self._ident())
        return self._real.poll(timeout, *args, **kwargs)

    def _ident(self):
        return {}


def _poll_factory(orig):
    class PollObject(_Traced):
        _events: ClassVar[dict[str, str]] = {
            "register": "poll_register",
            "unregister": "poll_unregister",
            "modify": "poll_modify",
            "wait": "poll_wait",
        }

    def poll():
        obj = PollObject(orig())
        _emit("poll_new", at=_site())
        return obj

    return poll


def _epoll_class(orig):
    class epoll(_Traced):
        """select.epoll, traced: register/unregister/modify/poll/close."""

        _events: ClassVar[dict[str, str]] = {
            "register": "epoll_register",
            "unregister": "epoll_unregister",
            "modify": "epoll_modify",
            "wait": "epoll_wait",
        }

        def __init__(self, *args, _real=None, **kwargs):
            super().__init__(orig(*args, **kwargs) if _real is None else _real)
            _emit("epoll_new", epfd=_fd_of(self._real), at=_site())

        @classmethod
        def fromfd(cls, fd):
            return cls(_real=orig.fromfd(fd))

        def _ident(self):
            return {"epfd": _fd_of(self._real)}

        def close(self):
            epfd = _fd_of(self._real)
            try:
                return self._real.close()
            finally:
                _forget_selector(id(self))
                _emit("epoll_close", epfd=epfd, at=_site())

        def __enter__(self):
            self._real.__enter__()
            return self

        def __exit__(self, *exc):
            self.close()
            return False

    return epoll


def main():
    if len(sys.argv) < 2:
        sys.stderr.write("usage: boot.py ENTRY [ARGS...]\n")
        return 2
    entry = os.path.realpath(sys.argv[1])
    sys.argv = [entry] + sys.argv[2:]
    sys.path[0:0] = [os.path.dirname(entry)]
    _open_trace()
    try:
        _install()
    except Exception as exc:  # the tracer is optional; the student's program is not
        _emit("tracer_error", error=repr(exc))
    _emit("start", entry=os.path.relpath(entry, _root), pid=os.getpid())
    try:
        runpy.run_path(entry, run_name="__main__")
    except SystemExit as exc:
        _emit("exit", code=exc.code if isinstance(exc.code, int) else repr(exc.code))
        raise
    except BaseException as exc:
        tb = exc.__traceback__
        site = None
        while tb is not None:
            path = tb.tb_frame.f_code.co_filename
            if path.startswith(_root + os.sep):
                site = f"{os.path.relpath(path, _root)}:{tb.tb_lineno}"
            tb = tb.tb_next
        _emit("crash", type=type(exc).__name__, message=str(exc)[:500], at=site)
        raise
    _emit("exit", code=0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
