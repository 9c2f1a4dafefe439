"""Student-side trace hooks: sockets, selectors, select/poll/epoll, threads and fork, wrapped.

boot.py loads this file by its path under a private module name that is never put into
sys.modules, inside the student's own interpreter: like boot.py it imports nothing from the
kit, and every hook swallows its own errors, since the program it hosts must never break.
The event kinds are literal strings (or the literal `_events` tables of the poll and epoll
proxies): the kit's vocabulary test reads them from this source.
"""

from __future__ import annotations

import os
import sys
import threading
from types import FrameType
from typing import ClassVar

MAX_SITES = 50  # distinct wait sites (and blocking-call sites) traced: loops repeat them


def _no_emit(ev, **fields):
    """Stands in for boot.py's writer until install() is given it."""


_emit = _no_emit
_root = ""  # the submission folder: frames in it are "the student's code"
_port_zero = False  # a TCP bind to a fixed port binds to an ephemeral one instead
_guard = threading.local()
_registered: dict[
    int, tuple[int, str | None]
] = {}  # fd -> (selector id, "file:line" where it was registered)
_seen_select: set[tuple] = set()
_seen_blocking: dict[
    tuple, int | None
] = {}  # (call, "file:line") -> the fd of the last blocking call traced there


def install(emit, root, port_zero):
    """Wrap everything traced; each hook writes through `emit(ev, **fields)`. Raises when a
    wrapper cannot be put in place (boot.py then writes tracer_error and runs the program)."""
    global _emit, _root, _port_zero
    _emit, _root, _port_zero = emit, root, bool(port_zero)
    _install()


def _site():
    """The innermost frame of the student's own code, as 'server.py:16'."""
    frame: FrameType | None = sys._getframe(2)
    while frame is not None:
        path = frame.f_code.co_filename
        if path.startswith(_root + os.sep):
            return f"{os.path.relpath(path, _root)}:{frame.f_lineno}"
        frame = frame.f_back
    return None


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
                _port_zero
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
