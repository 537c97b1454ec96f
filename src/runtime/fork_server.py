"""adhoc's fork server: one Python interpreter per release, with modules already imported,
that starts the release's Python programs by fork instead of by exec.

    python3 fork_server.py SOCKET [MODULE ...]

It imports every MODULE (one that fails is reported and skipped), then listens on SOCKET
(made under a temporary name, mode 0600, then renamed: while SOCKET does not exist, the
server is not ready and callers start their programs the ordinary way).

One connection per program, from the task's shim (src/runtime/warm_start.h):
  shim -> server  one line of JSON {"command": str, "env": {str: str}, "cwd": str}, with two
                  file descriptors (stdin, and stdout+stderr) passed along with its first byte;
  server -> shim  {"ok": false, "why": str} when it does not run this command (the shim then
                  starts it the ordinary way), or {"ok": true, "pid": N} once forked;
  shim -> server  one byte "g" (go), once the shim has put the child into its cgroups; the
                  child waits for it before it runs anything;
  server -> shim  {"exit": {"code": N}} or {"exit": {"signal": N}} when the child has ended.

It runs a command only when it can run exactly what the shell would: a single simple command
(no quoting beyond shlex's, no expansion, redirection or operator) whose program is this
interpreter with `-m MODULE` or a script, or a script whose `#!` line names this interpreter.
Modules imported here are shared by every child until written to (copy on write): they must
not read the environment at import time, which is the child's only after the fork.
"""

import atexit
import ctypes
import importlib
import io
import json
import os
import runpy
import select
import shlex
import signal
import socket
import sys
import threading
import traceback

MAX_REQUEST = 1 << 20
SHELL_CHARACTERS = set("$`;&|<>()*?[]{}~!#\n\\")
# Environment variables the interpreter reads only at its own start, and that a child must
# therefore not need: a command that sets one of them is started the ordinary way.
START_ONLY = {
    "PYTHONHASHSEED", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONOPTIMIZE", "PYTHONDEBUG",
    "PYTHONINSPECT", "PYTHONVERBOSE", "PYTHONNOUSERSITE", "PYTHONUSERBASE", "PYTHONWARNINGS",
    "PYTHONSAFEPATH", "PYTHONDEVMODE", "PYTHONUTF8", "PYTHONIOENCODING", "PYTHONMALLOC",
    "PYTHONFAULTHANDLER", "PYTHONTRACEMALLOC", "PYTHONPLATLIBDIR", "PYTHONEXECUTABLE",
    "PYTHONINTMAXSTRDIGITS", "PYTHONNODEBUGRANGES", "PYTHONFROZENMODULES",
}

SELF = os.path.realpath(sys.executable)


def log(message):
    print("adhoc fork server: " + message, file=sys.stderr, flush=True)


def find_program(word, env, cwd):
    if "/" in word:
        path = os.path.join(cwd, word)
        return path if os.access(path, os.X_OK) else None
    for folder in env.get("PATH", "").split(":"):
        path = os.path.join(folder or cwd, word)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return None


def shebang_is_self(path):
    try:
        with open(path, "rb") as f:
            first = f.readline(256)
    except OSError:
        return False
    if not first.startswith(b"#!"):
        return False
    words = first[2:].decode("utf-8", "replace").split()
    return len(words) == 1 and os.path.realpath(words[0]) == SELF


def plan(command, env, cwd):
    """(kind, target, argv) for a command this server runs, or a reason (str) it does not."""
    if any(c in SHELL_CHARACTERS for c in command):
        return "the command needs a shell"
    try:
        words = shlex.split(command)
    except ValueError as e:
        return "the command cannot be split: %s" % e
    if words and words[0] == "exec":
        words = words[1:]
    if not words:
        return "an empty command"
    if "=" in words[0]:
        return "the command sets variables"
    started = [k for k in env if k in START_ONLY]
    if started:
        return "the environment sets %s, read only when an interpreter starts" % started[0]
    program = find_program(words[0], env, cwd)
    if program is None:
        return "%s is not found" % words[0]
    if os.path.realpath(program) == SELF:
        if len(words) >= 3 and words[1] == "-m":
            return ("module", words[2], words[2:])
        if len(words) >= 2 and not words[1].startswith("-"):
            return ("script", os.path.join(cwd, words[1]), words[1:])
        return "interpreter options other than -m"
    if shebang_is_self(program):
        return ("script", program, [program] + words[1:])
    return "%s is not a program of %s" % (words[0], SELF)


def name_process(path):
    """The child's name in ps and top (its /proc comm): its program's, not the server's."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(15, os.path.basename(path).encode()[:15], 0, 0, 0)
    except (OSError, AttributeError):
        pass


def reopen_stdio(unbuffered):
    sys.stdout.flush()
    sys.stderr.flush()

    def writer(fd, line_buffering):
        raw = io.FileIO(fd, "w", closefd=False)
        if unbuffered:
            return io.TextIOWrapper(raw, "utf-8", "backslashreplace", write_through=True)
        return io.TextIOWrapper(io.BufferedWriter(raw), "utf-8", "backslashreplace",
                                line_buffering=line_buffering)

    sys.stdin = sys.__stdin__ = io.TextIOWrapper(io.BufferedReader(io.FileIO(0, "r", closefd=False)),
                                                 "utf-8", "surrogateescape")
    sys.stdout = sys.__stdout__ = writer(1, False)
    sys.stderr = sys.__stderr__ = writer(2, True)


def finish(code):
    """Ends the child as the interpreter would (its threads joined, atexit handlers run, output
    flushed) but without tearing down every module: that writes to every page shared with the
    server, copying them all, and took a second of a gunicorn worker's or master's stop."""
    shutdown = getattr(threading, "_shutdown", None)
    for step in (shutdown, atexit._run_exitfuncs, sys.stdout.flush, sys.stderr.flush):
        try:
            if step is not None:
                step()
        except BaseException:
            pass
    os._exit(code)


def exit_code(stop):
    """The status SystemExit(stop.code) ends an interpreter with."""
    if stop.code is None:
        return 0
    if isinstance(stop.code, int):
        return stop.code & 0xFF
    print(stop.code, file=sys.stderr)
    return 1


def run_child(conn, fds, request, kind, target, argv):
    """In the forked child: becomes the program; never returns."""
    # The server's own handlers go; the rest stays as an interpreter starts (SIGPIPE and
    # SIGXFSZ ignored, so that a write to a closed socket is an exception, not a death).
    for sig in (signal.SIGCHLD, signal.SIGTERM):
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    os.dup2(fds[0], 0)
    os.dup2(fds[1], 1)
    os.dup2(fds[1], 2)
    for fd in fds:
        if fd > 2:
            os.close(fd)
    conn.settimeout(None)
    go = b""
    try:
        go = conn.recv(1)
    except OSError:
        pass
    conn.close()
    if go != b"g":
        os._exit(125)
    env = request["env"]
    os.environ.clear()
    os.environ.update(env)
    try:
        os.chdir(request["cwd"])
    except OSError as e:
        os.write(2, ("adhoc fork server: cannot enter %s: %s\n" % (request["cwd"], e)).encode())
        os._exit(126)
    reopen_stdio(bool(env.get("PYTHONUNBUFFERED")))
    sys.dont_write_bytecode = bool(env.get("PYTHONDONTWRITEBYTECODE"))
    extra = [p for p in env.get("PYTHONPATH", "").split(":") if p]
    first = request["cwd"] if kind == "module" else os.path.dirname(os.path.realpath(target))
    sys.path[:] = [first] + extra + [p for p in sys.path[1:] if p not in extra]
    sys.argv = list(argv)
    name_process(target.split(".")[0] if kind == "module" else target)
    try:
        if kind == "module":
            # A package imported here runs as `-m` runs it, by its __main__ module: runpy
            # cannot look the package up again when it replaced itself in sys.modules (Celery).
            loaded = sys.modules.get(target)
            if loaded is not None and hasattr(loaded, "__path__"):
                target += ".__main__"
            runpy.run_module(target, run_name="__main__", alter_sys=True)
        else:
            sys.argv[0] = target
            runpy.run_path(target, run_name="__main__")
    except SystemExit as stop:
        finish(exit_code(stop))
    except KeyboardInterrupt:
        # As the interpreter does: it ends by the signal itself.
        traceback.print_exc()
        finish_by = getattr(sys.stderr, "flush", None)
        if finish_by:
            finish_by()
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
        finish(130)
    except BaseException:
        traceback.print_exc()
        finish(1)
    finish(0)


class Server:
    def __init__(self, path, refuse_all=None):
        self.path = path
        self.refuse_all = refuse_all  # why every command starts by exec instead
        self.children = {}  # pid -> the connection its exit is reported on
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        temporary = path + ".new"
        try:
            os.unlink(temporary)
        except FileNotFoundError:
            pass
        old_mask = os.umask(0o177)
        try:
            self.listener.bind(temporary)
        finally:
            os.umask(old_mask)
        self.listener.listen(64)
        os.rename(temporary, path)
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_w, False)
        os.set_blocking(self.wake_r, False)
        signal.set_wakeup_fd(self.wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.signal(signal.SIGTERM, lambda *_: self.stop())
        self.running = True

    def stop(self):
        self.running = False

    def serve(self):
        while self.running:
            try:
                ready, _, _ = select.select([self.listener, self.wake_r], [], [], 5.0)
            except InterruptedError:
                ready = []
            if self.wake_r in ready:
                try:
                    os.read(self.wake_r, 4096)
                except BlockingIOError:
                    pass
            if self.listener in ready and self.running:
                try:
                    conn, _ = self.listener.accept()
                except OSError:
                    conn = None
                if conn is not None:
                    self.handle(conn)
            self.reap()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass

    def reap(self):
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            conn = self.children.pop(pid, None)
            if conn is None:
                continue
            if os.WIFSIGNALED(status):
                end = {"signal": os.WTERMSIG(status)}
            else:
                end = {"code": os.WEXITSTATUS(status)}
            self.reply(conn, {"exit": end})
            conn.close()

    def reply(self, conn, message):
        try:
            conn.sendall((json.dumps(message) + "\n").encode())
        except OSError:
            pass

    def read_request(self, conn):
        conn.settimeout(2.0)
        data, fds, _, _ = socket.recv_fds(conn, 65536, 2)
        while not data.endswith(b"\n"):
            if len(data) > MAX_REQUEST:
                raise ValueError("request too long")
            more = conn.recv(65536)
            if not more:
                raise ValueError("request cut short")
            data += more
        request = json.loads(data)
        if (not isinstance(request, dict) or not isinstance(request.get("command"), str)
                or not isinstance(request.get("cwd"), str)
                or not isinstance(request.get("env"), dict)
                or not all(isinstance(k, str) and isinstance(v, str)
                           for k, v in request["env"].items())):
            raise ValueError("a request needs command, cwd and env (strings)")
        return request, fds

    def handle(self, conn):
        fds = []
        try:
            request, fds = self.read_request(conn)
            if len(fds) != 2:
                raise ValueError("a request brings two file descriptors")
            what = self.refuse_all or plan(request["command"], request["env"], request["cwd"])
            if isinstance(what, str):
                self.reply(conn, {"ok": False, "why": what})
                conn.close()
                return
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                # The child never comes back here: it becomes the program, which ends it.
                try:
                    os.setpgid(0, 0)
                    signal.set_wakeup_fd(-1)
                    self.listener.close()
                    os.close(self.wake_r)
                    os.close(self.wake_w)
                    for other in self.children.values():
                        other.close()
                    self.children = {}
                    run_child(conn, fds, request, *what)
                except SystemExit:
                    raise
                except BaseException:
                    traceback.print_exc()
                    os._exit(125)
            try:
                os.setpgid(pid, pid)
            except OSError:
                pass
            self.children[pid] = conn
            self.reply(conn, {"ok": True, "pid": pid})
        except Exception as e:  # a bad request never ends the server
            self.reply(conn, {"ok": False, "why": "bad request: %s" % e})
            conn.close()
        finally:
            if os.getpid() == self.pid_of_server:
                for fd in fds:
                    os.close(fd)


def main():
    if len(sys.argv) < 2:
        log("usage: fork_server.py SOCKET [MODULE ...]")
        return 2
    # Modules of the release itself (its working folder) can be preloaded too.
    sys.path[0] = os.getcwd()
    for name in sys.argv[2:]:
        try:
            importlib.import_module(name)
        except BaseException as e:  # a module may even call sys.exit: skipped all the same
            log("preloading %s failed, skipped: %s: %s" % (name, type(e).__name__, e))
            for loaded in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
                del sys.modules[loaded]
    # A fork copies only the calling thread: a thread a module started would be missing, with
    # whatever locks it held, in every child.
    refuse_all = None
    if threading.active_count() > 1:
        refuse_all = "a preloaded module started a thread; forks of it would be unsafe"
        log(refuse_all + ": every command starts by exec")
    server = Server(sys.argv[1], refuse_all)
    server.pid_of_server = os.getpid()
    log("ready: %d modules loaded" % len(sys.modules))
    server.serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
