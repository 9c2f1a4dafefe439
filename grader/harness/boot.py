"""Student-side launcher: runs the submission's entry file with a tracer loaded.

This file is run by the student's own interpreter (``python -I -S -u boot.py ENTRY ARGS``),
so it imports nothing from the kit and must never break the program it hosts: every hook
swallows its own errors.  What it writes is *explanation*, never evidence for a pass: the
student controls this process and can switch the tracer off. The hooks themselves live in
tracehooks.py beside this file (the kit copies both), loaded by path under a private name.

Environment (read once, then removed so the submission does not see it):
  SG_TRACE      file to append JSON lines to
  SG_STACK      file faulthandler appends the main thread's stack to when the kit sends
                SIGUSR2 (why that signal: the kit's stackdump.py), so that a reason can
                name the line the program stands at
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

MAX_EVENTS = 5000

_ENV_KEYS = ("SG_TRACE", "SG_ROOT", "SG_PORT_ZERO", "SG_STACK")
_env = dict.fromkeys(_ENV_KEYS, "")
_root = ""
_out = None
_count = 0
_lock = threading.Lock()
# The hooks' file, beside this one, and the private name it is loaded under.
HOOKS_FILE = "tracehooks.py"
HOOKS_MODULE = "_socketgrade_tracehooks"
_hooks = None  # the loaded hooks module: held here, since sys.modules does not hold it
_stack = None  # the descriptor faulthandler dumps to: open for the program's whole life


def _take_env():
    """Read the tracer's variables, and remove them so the submission does not see them."""
    global _env, _root
    _env = {k: os.environ.pop(k, "") for k in _ENV_KEYS}
    _root = os.path.realpath(_env["SG_ROOT"] or os.getcwd())


def _open_trace():
    global _out
    if _env["SG_TRACE"]:
        try:
            _out = open(_env["SG_TRACE"], "a", buffering=1, encoding="utf-8")
        except OSError:
            _out = None


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


def _listen_for_stack():
    """Dump every thread's stack (the main thread's last) to SG_STACK on SIGUSR2, from a
    Python-level handler (signal.signal) that calls faulthandler.dump_traceback. Not
    faulthandler.register: its C handler does not keep errno for the code it interrupts, and
    a correct server graded under load died of "OSError: [Errno 0]" in recv() when the
    signal fell between the call's failure and Python reading errno. The interpreter's own
    C handler keeps errno; the Python handler runs in the main thread at its next bytecode,
    a blocked call interrupted by the signal is restarted afterwards (PEP 475), and a program
    stuck in C code that never returns to the interpreter just does not answer (the kit
    waits with a deadline and keeps the kernel's evidence). Every thread: the dump still
    holds the main one. The file is held on a descriptor at the top of the table, so the
    program's own descriptors keep the numbers they have without the kit (reasons quote
    them)."""
    global _stack
    if not _env["SG_STACK"]:
        return
    import faulthandler
    import fcntl
    import resource
    import signal

    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    top = (soft if 0 < soft <= 1024 else 1024) - 1
    fd = os.open(_env["SG_STACK"], os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
    try:
        _stack = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, top)
    finally:
        os.close(fd)

    def dump(signum, frame):
        try:
            faulthandler.dump_traceback(file=_stack, all_threads=True)
        except Exception:
            pass  # a failed dump leaves the kit's evidence without a line, nothing more

    signal.signal(signal.SIGUSR2, dump)
    # At exit the interpreter puts SIG_DFL back for a signal with a Python handler, and
    # SIGUSR2's default ends the process: a dump asked for just then would turn a program
    # that ends by itself into one "killed by SIGUSR2". Ignored from the last atexit call on
    # (registered first, it runs last), it stays ignored, and the kit no longer asks.
    import atexit

    atexit.register(signal.signal, signal.SIGUSR2, signal.SIG_IGN)


def _load_beside(file, name):
    """A file beside this one, loaded by its path under a private name that is never put
    into sys.modules: no folder of ours goes onto the student's sys.path, and no module of
    the student's (a tracehooks.py of its own) can meet ours."""
    import importlib.util

    path = os.path.join(os.path.dirname(os.path.realpath(__file__)), file)
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _load_hooks():
    global _hooks
    _hooks = _load_beside(HOOKS_FILE, HOOKS_MODULE)
    return _hooks


def _install():
    """Put the hooks in place (a fork server loaded them once, before the fork)."""
    hooks = _hooks if _hooks is not None else _load_hooks()
    hooks.install(_emit, _root, _env["SG_PORT_ZERO"] == "1")


def _raised_at(exc):
    """The innermost line of the student's code an exception passed through."""
    tb = exc.__traceback__
    site = None
    while tb is not None:
        path = tb.tb_frame.f_code.co_filename
        if path.startswith(_root + os.sep):
            site = f"{os.path.relpath(path, _root)}:{tb.tb_lineno}"
        tb = tb.tb_next
    return site


def main():
    if len(sys.argv) < 2:
        sys.stderr.write("usage: boot.py ENTRY [ARGS...]\n")
        return 2
    _take_env()
    entry = os.path.realpath(sys.argv[1])
    sys.argv = [entry] + sys.argv[2:]
    sys.path[0:0] = [os.path.dirname(entry)]
    _open_trace()
    try:
        _install()
    except Exception as exc:  # the tracer is optional; the student's program is not
        _emit("tracer_error", error=repr(exc))
    try:
        _listen_for_stack()
    except Exception as exc:
        _emit("tracer_error", error=repr(exc))
    _emit("start", entry=os.path.relpath(entry, _root), pid=os.getpid())
    try:
        runpy.run_path(entry, run_name="__main__")
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else repr(exc.code)
        _emit("exit", code=code, at=_raised_at(exc))
        raise
    except BaseException as exc:
        _emit("crash", type=type(exc).__name__, message=str(exc)[:500], at=_raised_at(exc))
        raise
    # The entry file's code ran to its end: the kit names its last line.
    _emit("exit", code=0, end=True)
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve"]:
        # A fork server (forkserve.py): returns only in a forked run, set up as this
        # file's own command line would have it.
        _load_beside("forkserve.py", "_socketgrade_forkserve").serve(int(sys.argv[2]), _load_hooks)
    sys.exit(main())
