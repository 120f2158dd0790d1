"""Run a command under a Linux child subreaper; report what of its tree outlived it.

``python tests/subreaper.py REPORT -- command [args...]``: runs the command (its output
passes through), waits for it to exit, then writes to REPORT, as JSON, the exit code and
every process of the command's tree still there. The kernel hands each orphan of that tree
to the nearest subreaper ancestor, this process, so none can hide by changing session or
parent. Leftovers are then killed, so a failing test leaves nothing behind. Exits with the
command's exit code.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

PR_SET_CHILD_SUBREAPER = 36


def tree() -> list[int]:
    """Every live process below this one (adopted orphans and their children included).

    Zombies are not counted: a process the command killed, whose parent exited before
    reaping it, is handed to this process as a zombie, dead already (see _reap).
    """
    parents: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                stat = Path(f"/proc/{entry.name}/stat").read_text(errors="replace")
            except OSError:
                continue  # gone meanwhile
            state, ppid = stat[stat.rfind(")") + 2 :].split()[:2]
            if state != "Z":
                parents[int(entry.name)] = int(ppid)
    found, todo = [], [os.getpid()]
    while todo:
        parent = todo.pop()
        for pid, ppid in parents.items():
            if ppid == parent:
                found.append(pid)
                todo.append(pid)
    return found


def describe(pid: int) -> str:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
        return f"{pid}: {argv.decode(errors='replace').strip()}"
    except OSError:
        return f"{pid}: (gone)"


def main() -> int:
    report, _, command = sys.argv[1], sys.argv[2], sys.argv[3:]
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        sys.exit("prctl(PR_SET_CHILD_SUBREAPER) failed: this needs Linux")
    # Signals are for the command, which the test signals itself: this process stays.
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)
    proc = subprocess.Popen(command, preexec_fn=_default_signals)
    code = proc.wait()
    _reap()
    left = [describe(pid) for pid in tree()]
    deadline = time.monotonic() + 10
    while tree() and time.monotonic() < deadline:  # killed parents hand us their children
        for pid in tree():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            while os.waitpid(-1, os.WNOHANG)[0]:
                pass
        time.sleep(0.05)
    Path(report).write_text(json.dumps({"code": code, "left": left}))
    return code


def _reap() -> None:
    """Collect the exit status of every dead child (adopted zombies included)."""
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass


def _default_signals() -> None:
    """The command gets the signal dispositions a terminal would give it."""
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_DFL)


if __name__ == "__main__":
    sys.exit(main())
