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
"""

import json
import os
import runpy
import sys
import threading
import time

MAX_EVENTS = 5000

_env = {k: os.environ.pop(k, "") for k in ("SG_TRACE", "SG_ROOT", "SG_PORT_ZERO")}
_root = os.path.realpath(_env["SG_ROOT"] or os.getcwd())
_out = None
_count = 0
_lock = threading.Lock()
_guard = threading.local()
_registered = {}  # fd -> (selector id, "file:line" where it was registered)
_seen_select = set()


def _open_trace():
    global _out
    if _env["SG_TRACE"]:
        try:
            _out = open(_env["SG_TRACE"], "a", buffering=1, encoding="utf-8")
        except OSError:
            _out = None


def _site():
    """The innermost frame of the student's own code, as 'server.py:16'."""
    frame = sys._getframe(2)
    while frame is not None:
        path = frame.f_code.co_filename
        if path.startswith(_root + os.sep):
            return "%s:%d" % (os.path.relpath(path, _root), frame.f_lineno)
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
            if (_env["SG_PORT_ZERO"] == "1" and self.family in (socket.AF_INET, socket.AF_INET6)
                    and self.type == socket.SOCK_STREAM and isinstance(address, tuple)
                    and len(address) >= 2 and address[1] not in (0, "0")):
                address = (address[0], 0) + tuple(address[2:])
        except Exception:
            address = requested
        result = orig_bind(self, address)
        _emit("bind", fd=_fd_of(self), requested=list(requested) if isinstance(requested, tuple)
              else requested, at=_site())
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

    impls = [getattr(selectors, name) for name in (
        "_BaseSelectorImpl", "_PollLikeSelector", "SelectSelector", "PollSelector",
        "EpollSelector", "DevpollSelector", "KqueueSelector") if hasattr(selectors, name)]

    def wrap_register(orig):
        @_outermost
        def register(self, outer, fileobj, events, data=None):
            key = orig(self, fileobj, events, data)
            if outer:
                site = _site()
                _registered[key.fd] = (id(self), site)
                _emit("register", fd=key.fd, events=events, selector=type(self).__name__, at=site)
            return key
        return register

    def wrap_unregister(orig):
        @_outermost
        def unregister(self, outer, fileobj):
            key = orig(self, fileobj)
            if outer:
                _registered.pop(key.fd, None)
                _emit("unregister", fd=key.fd, at=_site())
            return key
        return unregister

    def wrap_select(orig):
        @_outermost
        def select(self, outer, timeout=None):
            if outer:
                site = _site()
                if (site, timeout) not in _seen_select and len(_seen_select) < 50:
                    _seen_select.add((site, timeout))
                    _emit("select", timeout=timeout, selector=type(self).__name__, at=site)
            return orig(self, timeout)
        return select

    for cls in impls:
        for name, wrap in (("register", wrap_register), ("unregister", wrap_unregister),
                           ("select", wrap_select)):
            if name in cls.__dict__:
                setattr(cls, name, wrap(cls.__dict__[name]))

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
                site = "%s:%d" % (os.path.relpath(path, _root), tb.tb_lineno)
            tb = tb.tb_next
        _emit("crash", type=type(exc).__name__, message=str(exc)[:500], at=site)
        raise
    _emit("exit", code=0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
