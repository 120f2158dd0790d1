"""How the demo starts and stops what it runs (Linux): everything it starts, and everything
those start in turn, stops with it on SIGINT, SIGTERM or SIGHUP, and its folder goes too.

The demo makes itself a "child subreaper": a process whose parent dies (a gunicorn worker,
a service the Hub started, the Hub's proxy) is handed to the demo instead of to init, so at
the end the demo still sees every process of its tree and stops them all, however they
were started (each service runs in a session of its own).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType, TracebackType

__all__ = [
    "Lifecycle",
    "Stopped",
    "descendants",
    "describe",
    "port_holder",
    "port_in_use",
    "processes",
]

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36


class Stopped(BaseException):
    """Raised in the demo's main thread by the first SIGINT, SIGTERM or SIGHUP."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


try:  # loaded here, not in a forked child: dlopen there could wait on a lock forever
    _LIBC: ctypes.CDLL | None = ctypes.CDLL(None, use_errno=True)
except OSError:
    _LIBC = None


def _prctl(option: int, value: int) -> bool:
    """Linux's prctl(2); False where it is missing or refuses."""
    try:
        return _LIBC is not None and int(_LIBC.prctl(option, value, 0, 0, 0)) == 0
    except AttributeError:
        return False


def _die_with_parent() -> None:
    """In a child, before exec: SIGTERM when the demo dies, even by SIGKILL."""
    _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def processes() -> dict[int, tuple[int, str]]:
    """Every process this user can see: pid -> (parent pid, state letter)."""
    found: dict[int, tuple[int, str]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                stat = f.read().decode(errors="replace")
        except OSError:
            continue  # gone meanwhile
        fields = stat[stat.rfind(")") + 2 :].split()  # the name may hold spaces and parens
        found[int(entry.name)] = (int(fields[1]), fields[0])
    return found


def descendants(root: int) -> dict[int, str]:
    """Every process below ``root`` (children, their children, ...): pid -> state letter."""
    procs = processes()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in procs.items():
        children.setdefault(ppid, []).append(pid)
    found: dict[int, str] = {}
    todo = list(children.get(root, ()))
    while todo:
        pid = todo.pop()
        if pid not in found:
            found[pid] = procs[pid][1]
            todo += children.get(pid, ())
    return found


def describe(pid: int) -> str:
    """``pid 123 (node: configurable-http-proxy --port 8000 ...)``, as far as it is known."""
    try:
        name = Path(f"/proc/{pid}/comm").read_text().strip()
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        command = " ".join(a.decode(errors="replace") for a in argv if a)
    except OSError:
        return f"pid {pid}"
    command = command if len(command) <= 120 else command[:117] + "..."
    return f"pid {pid} ({name}: {command})"


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a listening socket would stop the Hub's proxy from binding ``host:port``."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as node does: TIME_WAIT is ok
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


def _listening_inodes(port: int) -> set[str]:
    """Socket inodes listening on ``port`` (any address), from /proc/net/tcp and tcp6."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port and inode != "0":
                inodes.add(inode)
    return inodes


def port_holder(port: int) -> str:
    """Who listens on ``port``: the process(es) as far as this user may see them."""
    inodes = {f"socket:[{inode}]" for inode in _listening_inodes(port)}
    holders: list[str] = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            fds = os.listdir(f"/proc/{entry.name}/fd")
        except OSError:
            continue  # another user's process, or gone
        for fd in fds:
            try:
                if os.readlink(f"/proc/{entry.name}/fd/{fd}") in inodes:
                    holders.append(describe(int(entry.name)))
                    break
            except OSError:
                continue
    if holders:
        return ", ".join(holders)
    if inodes:
        return "a process this user may not see (`sudo ss -ltnp` names it)"
    return "a socket not listed in /proc/net/tcp (`ss -ltnp` may name it)"


class Lifecycle:
    """The demo's run: a temporary folder, a log file, and every process started from it.

    Used as a context manager. Inside it, the first SIGINT, SIGTERM or SIGHUP raises
    ``Stopped`` in the main thread; on the way out (however it is left) every process of
    the demo's tree is stopped (SIGTERM, then SIGKILL), and the folder is removed.
    """

    def __init__(self, log: Path | None, *, verbose: bool) -> None:
        self._log_arg = log  # None: a log in the temporary folder, gone with it
        self.log_path = Path()
        self.verbose = verbose
        self.workdir = Path()
        self.subreaper = False
        self.left: list[str] = []  # what could not be stopped, described
        self.signum = 0  # the signal that stopped the demo, if one did
        self._hurry = False  # a second signal: do not wait for anyone
        self._previous: dict[int, object] = {}
        self._started: list[subprocess.Popen[bytes]] = []
        self._tail_done = threading.Event()
        self._tail: threading.Thread | None = None

    def __enter__(self) -> Lifecycle:
        self.subreaper = _prctl(_PR_SET_CHILD_SUBREAPER, 1)
        self.workdir = Path(tempfile.mkdtemp(prefix="hubauth-demo-"))
        self.log_path = self._log_arg or self.workdir / "demo.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        # O_APPEND: every process writes its lines at the end, none overwrites another's.
        self._log = open(self.log_path, "ab", buffering=0)
        self._log.truncate(0)
        for signum in STOP_SIGNALS:
            previous = signal.getsignal(signum)
            self._previous[signum] = previous
            if signum == signal.SIGHUP and previous == signal.SIG_IGN:
                continue  # started under nohup: keep running when the terminal goes
            signal.signal(signum, self._on_signal)
        return self

    def follow_log(self) -> None:
        """--verbose: from now on, copy the log to the terminal as it grows (from its start).

        Called once the processes are started: a thread running while ``start`` forks could
        hold a lock the child then waits on.
        """
        if self.verbose and self._tail is None:
            self._tail = threading.Thread(target=self._follow_log, daemon=True)
            self._tail.start()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self.signum:
            self._hurry = True  # asked again while stopping: stop at once
            return
        self.signum = signum
        raise Stopped(signum)

    def start(
        self, argv: Sequence[str], *, env: dict[str, str] | None = None, cwd: Path | None = None
    ) -> subprocess.Popen[bytes]:
        """Start a process in a session of its own, its output into the log."""
        proc = subprocess.Popen(
            list(argv),
            env={**os.environ, **(env or {})},
            cwd=cwd or self.workdir,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C reaches the demo only; the demo stops them
            preexec_fn=_die_with_parent,
        )
        self._started.append(proc)
        return proc

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        for signum in STOP_SIGNALS:  # from here on, a signal only hurries the stop
            if signal.getsignal(signum) == self._on_signal:
                signal.signal(signum, self._on_signal_while_stopping)
        try:
            self.left = self.stop_all()
        finally:
            self._tail_done.set()
            if self._tail is not None:
                self._tail.join(2)
            self._log.close()
            shutil.rmtree(self.workdir, ignore_errors=True)
            for signum, previous in self._previous.items():
                signal.signal(signum, previous)  # type: ignore[arg-type]

    def _on_signal_while_stopping(self, signum: int, frame: FrameType | None) -> None:
        self.signum = self.signum or signum
        self._hurry = True

    def stop_all(self, term_after: float = 1, kill_after: float = 15) -> list[str]:
        """Stop every process of the tree; the ones still there after all: described.

        The processes the demo started get SIGTERM first (the Hub then starts stopping its
        proxy and services, one after the other); ``term_after`` seconds later, or once
        those have exited, everything left gets SIGTERM too, so that the services stop
        together; after ``kill_after`` seconds, SIGKILL.
        """
        me = os.getpid()
        for proc in self._started:
            if proc.poll() is None:
                _kill(proc.pid, signal.SIGTERM)
        termed = {p.pid for p in self._started}
        start = time.monotonic()
        while True:
            self._reap()
            left = descendants(me)
            alive = {pid for pid, state in left.items() if state != "Z"}
            if not left:
                return []
            waited = time.monotonic() - start
            ours_done = all(p.poll() is not None for p in self._started)
            if waited > kill_after or self._hurry:
                for pid in alive:
                    _kill(pid, signal.SIGKILL)
            elif ours_done or waited > term_after:
                for pid in alive - termed:
                    _kill(pid, signal.SIGTERM)
                termed |= alive
            if waited > kill_after + 5:
                return [describe(pid) for pid in sorted(left)]
            time.sleep(0.05)

    def _reap(self) -> None:
        """Collect the exit status of every child that ended (adopted ones too)."""
        for proc in self._started:
            proc.poll()
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return

    def _follow_log(self) -> None:
        """--verbose: copy the log to the terminal as it grows."""
        with open(self.log_path, "rb") as f:
            while True:
                chunk = f.read(65536)
                if chunk:
                    sys.stdout.buffer.write(chunk)
                    sys.stdout.buffer.flush()
                elif self._tail_done.wait(0.2):
                    return


def _kill(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):  # gone meanwhile
        os.kill(pid, signum)
