"""Watch every descendant of a command from start to end, and reap the ones that re-parent to us.

The supervisor is a child subreaper (PR_SET_CHILD_SUBREAPER): a descendant whose parent dies is
re-parented to it, not to init, so double-forked and `setsid` daemons stay in view and their exit
status comes back through `waitpid`. Processes are found by polling /proc every few milliseconds.

Processes are found two ways. Where the kernel permits (CAP_NET_ADMIN: root, or a container
that grants it), its process events (netlink proc connector) report every fork, exec and exit as
it happens, with the exit status of every process, not only our children. /proc is also polled,
which is all there is elsewhere. What polling alone can know, stated honestly:
- a process that starts and ends between two polls is not seen at all (bench/run_overhead.py
  measures the fraction caught); the Python bootstrap records its own subprocesses exactly;
- the exit status of our own children (the command, and re-parented orphans) comes from
  `waitpid`, exact; a grandchild's is read from /proc while it is a zombie, which is seen only if
  its parent reaps it after our poll; otherwise it is unknown (None), never guessed.
`mode` says which: `events+poll` or `poll`, with `+taskstats` where the kernel's exit records
(taskstats.py) name the processes that were gone before /proc could be read.

A process's name comes from /proc, read when its fork or exec is reported; one that has already
exited and been reaped by then cannot be read. What is known anyway is kept: a name read at its
fork that already showed the new program is not thrown away when the (older) exec event arrives,
and a process that never exec'd (the events say so, none were dropped) ran its parent's program.

Where a process was exec'd with a TRACEPARENT other than its parent's (Claude Code hands its Bash
tool's processes the tool's span), `Proc.declared` names that span: the agent says where the
process belongs. It only moves where the process is drawn (show, step); it is the agent's word,
so it never replaces the parent the supervisor saw, and decides nothing in any gate.
"""

from __future__ import annotations

import ctypes
import logging
import os
import select
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from . import procfs, taskstats
from .netlink import Connector, ProcEvent, open_connector

log = logging.getLogger(__name__)

PR_SET_CHILD_SUBREAPER = 36
POLL_INTERVAL_S = 0.002
"""Between /proc scans when the kernel's process events are not available."""
EVENTS_POLL_INTERVAL_S = 0.02
"""Between /proc scans when they are: the events carry the fine-grained work."""


def become_subreaper() -> bool:
    """Make this process the reaper of its orphaned descendants. False where the kernel refuses."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


@dataclass
class Proc:
    """One process of the tree, as the watcher knows it."""

    pid: int
    ppid: int
    start_ns: int
    argv: list[str]
    name: str
    comm: str = ""
    end_ns: int | None = None
    exit_code: int | None = None
    signal: int | None = None
    exit_known: bool = False
    exec_unread: bool = False
    """It exec'd, and its new argv could not be read yet: `argv` is its parent's, not its own."""
    exec_credit: int = 0
    """Execs already reflected in what was read of it, whose events are still to come."""
    exec_events: int = 0
    overruns: int = 0
    """The kernel's dropped-event count when it was added: events about it may be missing if it grows."""
    traceparent: str | None = None
    """`<trace id>-<span id>` of the TRACEPARENT in its environment, "" none, None unread."""
    declared: str | None = None
    """The span (`<trace id>-<span id>`) its TRACEPARENT names, where that is not its parent's."""
    handle: object = None
    """Whatever the owner attaches (the supervisor: the process's span)."""

    @property
    def alive(self) -> bool:
        return self.end_ns is None

    def set_status(self, status: int) -> None:
        if os.WIFEXITED(status):
            self.exit_code = os.WEXITSTATUS(status)
        elif os.WIFSIGNALED(status):
            self.signal = os.WTERMSIG(status)
        self.exit_known = True


@dataclass
class Listening:
    """The kernel's process events and exit records, opened before the agent is started so that
    nothing it does first (a command that runs and ends at once) happens before anyone listens."""

    events: Connector | None
    taskstats: taskstats.Listener | None

    def close(self) -> None:
        """When no watcher took them (the agent could not be started)."""
        for opened in (self.events, self.taskstats):
            if opened is not None:
                opened.close()


def listen(use_events: bool = True, use_taskstats: bool = True) -> Listening:
    return Listening(
        open_connector() if use_events else None, taskstats.open_listener() if use_taskstats else None
    )


class ProcessWatcher:
    """Tracks the descendants of this process, starting with `root_pid`, on a thread of its own.

    `on_start(proc)` and `on_end(proc)` are called from that thread, parents before children;
    `on_exec(proc)` when a process seen before has exec'd another program (new argv and name).
    """

    def __init__(
        self,
        root_pid: int,
        on_start: Callable[[Proc], None],
        on_end: Callable[[Proc], None],
        interval: float = POLL_INTERVAL_S,
        on_exec: Callable[[Proc], None] | None = None,
        use_events: bool = True,
        use_taskstats: bool = True,
        listening: Listening | None = None,
    ) -> None:
        self.root_pid = root_pid
        self.on_start = on_start
        self.on_end = on_end
        self.on_exec = on_exec
        self.interval = interval
        self.procs: dict[int, Proc] = {}
        """Every process seen, by pid (a reused pid replaces an ended one)."""
        self.root_exited = threading.Event()
        self._me = os.getpid()
        self._foreign: dict[int, int] = {}  # pid -> start_ns of processes that are not ours
        self._dropped = 0  # times the kernel dropped events, in the order they were read
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="agenttrace-watcher", daemon=True)
        listening = listening if listening is not None else listen(use_events, use_taskstats)
        self._events, self._taskstats = listening.events, listening.taskstats
        self.mode = ("events+poll" if self._events is not None else "poll") + (
            "+taskstats" if self._taskstats is not None else ""
        )
        if self._events is not None and interval == POLL_INTERVAL_S:
            self.interval = EVENTS_POLL_INTERVAL_S

    def start(self) -> None:
        root = procfs.stat(self.root_pid)
        self._add(procfs.ProcStat(self.root_pid, self._me, "R", time.time_ns(), "") if root is None else root)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.ident is not None:  # started
            self._thread.join(timeout=5)
        if self._events is not None:
            self._events.close()
        if self._taskstats is not None:
            self._taskstats.close()

    def alive(self) -> list[Proc]:
        with self._lock:
            return [p for p in self.procs.values() if p.alive]

    @property
    def root(self) -> Proc:
        return self.procs[self.root_pid]

    def poll_once(self) -> None:
        with self._lock:
            self._read_events()
            self._reap()
            self._scan()

    # -- the loop ---------------------------------------------------------------------------------
    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once()
            except Exception:  # the watcher must not die; the run's record would end silently
                log.exception("agenttrace: process watcher error")
            if self._events is not None:
                select.select([self._events], [], [], self.interval)
            else:
                time.sleep(self.interval)
        self.poll_once()

    def _read_events(self) -> None:
        events = self._events.read() if self._events is not None else []
        if self._taskstats is not None:  # the kernel sends a task's exit record before its exit event
            self._taskstats.drain()
        for event in events:
            self._on_event(event)

    def _on_event(self, event: ProcEvent) -> None:
        known = self.procs.get(event.pid)
        if event.kind == "overrun":
            self._dropped += 1
        elif event.kind == "fork":
            parent = self.procs.get(event.ppid)
            ours = event.ppid == self._me or (parent is not None and parent.alive)
            if ours and (known is None or not known.alive) and event.pid != self.root_pid:
                st = procfs.stat(event.pid)
                if st is None or st.ppid != event.ppid:
                    st = procfs.ProcStat(event.pid, event.ppid, "R", event.time_ns, "")
                self._add(st)
        elif known is None or not known.alive:
            return
        elif event.kind == "exec":
            known.exec_events += 1
            self._exec(known, procfs.stat(event.pid), event=True)
        elif event.kind == "exit":
            if not known.exit_known:
                known.set_status(event.status)
            if not known.name or known.exec_unread:  # a zombie still shows its name
                st = procfs.stat(event.pid)
                parent = self.procs.get(known.ppid)
                if st is not None and st.comm and st.start_ns == known.start_ns:
                    known.argv, known.name, known.comm = [st.comm], st.comm, st.comm
                elif parent is not None and parent.name and self._never_execd(known):
                    # forked and gone before it could be read, and it never exec'd: its parent's program
                    known.argv, known.name, known.comm = list(parent.argv), parent.name, parent.comm
                elif self._taskstats is not None and taskstats.complete(known, self._taskstats, self._me):
                    pass  # named by the kernel's exit record
                else:  # its parent's argv would be a lie: say it is unknown
                    known.argv, known.name = [], "?"
                known.exec_unread = False
                if self.on_exec is not None:
                    self.on_exec(known)
            self._end(known, event.time_ns)

    def _reap(self) -> None:
        reaped: list[tuple[int, int]] = []
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            reaped.append((pid, status))
        if reaped and self._events is not None:
            # Everything they did (a fork, an exec) was reported before they could be reaped: read
            # it first. A process ended here first would have its children's fork events refused
            # (their parent no longer alive) and its own exec event ignored (named as its parent).
            self._read_events()
        for pid, status in reaped:
            proc = self.procs.get(pid)
            if proc is None:
                # Re-parented to us and gone before a poll saw it: caught by its exit alone.
                proc = self._add(procfs.ProcStat(pid, self._me, "Z", time.time_ns(), "?"))
            if not proc.exit_known:
                proc.set_status(status)
            self._end(proc)
            if pid == self.root_pid:
                self.root_exited.set()

    def _scan(self) -> None:
        current = procfs.pids()
        present = set(current)
        vanished = [p for p in self.procs.values() if p.alive and p.pid not in present]
        if vanished and self._events is not None:
            self._read_events()  # the kernel sent their exit before they left /proc
        for proc in vanished:
            self._end(proc)
        unresolved: list[procfs.ProcStat] = []
        for pid in current:
            known = self.procs.get(pid)
            if known is not None and known.alive:
                self._check(known)
                continue
            if pid in self._foreign or pid == self._me:
                continue
            st = procfs.stat(pid)
            if st is None:
                continue
            if known is not None and st.start_ns == known.start_ns:
                continue  # an ended process of ours, still a zombie or not yet gone from /proc
            unresolved.append(st)
        ours = {p.pid for p in self.procs.values() if p.alive} | {self._me}
        progress = True
        while unresolved and progress:
            progress = False
            for st in list(unresolved):
                if st.ppid in ours:
                    self._add(st)
                    ours.add(st.pid)
                    unresolved.remove(st)
                    progress = True
        # Not ours: remember, so they are not read again. One whose parent is gone stays
        # unresolved: it is being re-parented, maybe to us (a daemon whose parent exited).
        waiting = {st.pid for st in unresolved}
        for st in unresolved:
            parent_foreign = st.ppid in self._foreign or st.ppid in (0, 1)
            if parent_foreign or (st.ppid in present and st.ppid not in waiting):
                self._foreign[st.pid] = st.start_ns

    def _check(self, proc: Proc) -> None:
        """A live descendant: has it exec'd (forked children run the parent's argv until they
        do)? Is it a zombie, whose status can be read before its parent reaps it?"""
        st = procfs.stat(proc.pid)
        if st is None or st.start_ns != proc.start_ns:
            return  # gone: the next scan ends it
        if st.state != "Z" and st.comm != proc.comm:
            self._exec(proc, st)
            if self._events is not None and not proc.exec_unread:
                proc.exec_credit += 1  # its exec event is still to come
        elif st.state != "Z" and proc.traceparent is None:  # read in the middle of its exec
            proc.traceparent = procfs.traceparent(proc.pid)
            if proc.traceparent:
                self._declare(proc)
                if proc.declared is not None and self.on_exec is not None:
                    self.on_exec(proc)
        if st.state == "Z" and st.ppid != self._me:  # ours are reaped with their status
            if self._events is not None:
                self._read_events()  # its forks and exec were reported before it exited: read them first
                if not proc.alive:
                    return  # its exit event ended it, with its status
            if st.exit_status is not None:
                proc.set_status(st.exit_status)
            self._end(proc)

    def _exec(self, proc: Proc, st: procfs.ProcStat | None, event: bool = False) -> None:
        """The process now runs another program: take its argv (or, if it is already gone, the
        name the kernel still shows for it) instead of the parent's it was forked with."""
        credited = event and proc.exec_credit > 0
        if credited:
            proc.exec_credit -= 1
        argv = procfs.cmdline(proc.pid)
        if argv:
            proc.argv = argv
            proc.name = procfs.exe_name(proc.pid) or os.path.basename(argv[0])
            if st is not None:
                proc.comm = st.comm
            traceparent = procfs.traceparent(proc.pid)
            if traceparent is not None:
                proc.traceparent = traceparent
                self._declare(proc)
        elif st is not None and st.state == "Z" and st.comm:
            proc.argv, proc.name, proc.comm = [st.comm], st.comm, st.comm
        elif credited:
            return  # what was read of it already showed this exec's program
        else:
            proc.exec_unread = True  # in the middle of exec, or gone: a later poll or its exit says
            return
        proc.exec_unread = False
        if self.on_exec is not None:
            self.on_exec(proc)

    def _add(self, st: procfs.ProcStat) -> Proc:
        argv = procfs.cmdline(st.pid)
        proc = Proc(
            pid=st.pid,
            ppid=st.ppid,
            start_ns=st.start_ns,
            argv=argv,
            name=procfs.exe_name(st.pid) or (os.path.basename(argv[0]) if argv else st.comm),
            comm=st.comm,
            overruns=self._overruns(),
            traceparent=procfs.traceparent(st.pid),
        )
        parent = self.procs.get(st.ppid)
        if parent is not None and st.comm and parent.comm and st.comm != parent.comm:
            proc.exec_credit = 1  # it has exec'd already: that exec's event, when it comes, is old news
        self.procs[st.pid] = proc
        self._declare(proc)
        self.on_start(proc)
        return proc

    def _overruns(self) -> int:
        return self._dropped

    def _never_execd(self, proc: Proc) -> bool:
        """The kernel's events say it never exec'd: it was followed from its fork, and none were dropped."""
        events = self._events is not None and proc.exec_events == 0 and proc.overruns == self._overruns()
        return events and not proc.exec_unread

    def _declare(self, proc: Proc) -> None:
        """Set `proc.declared` if its TRACEPARENT names another span than the one it inherited: the
        nearest ancestor's whose environment was read (else the command's, as `agenttrace run` set
        it). Never the span `agenttrace run` handed the command, nor where nothing is known to compare.

        Safe to take from the agent: it only moves where the process is drawn. The process keeps its
        span, its parent process's span as parent, its exit status and `alive_at_exit`, so it stays
        in the `processes` view and before the `orphan_processes` gate whatever TRACEPARENT says."""
        if proc.pid == self.root_pid or not proc.traceparent:
            proc.declared = None
            return
        root = self.procs.get(self.root_pid)
        handed = root.traceparent if root is not None else None
        inherited, seen = None, {proc.pid}
        ancestor = self.procs.get(proc.ppid)
        while ancestor is not None and ancestor.pid not in seen:
            if ancestor.traceparent is not None:
                inherited = ancestor.traceparent
                break
            seen.add(ancestor.pid)
            ancestor = self.procs.get(ancestor.ppid)
        if inherited is None:
            inherited = handed
        known = inherited is not None and handed is not None
        proc.declared = proc.traceparent if known and proc.traceparent not in (inherited, handed) else None

    def _end(self, proc: Proc, end_ns: int | None = None) -> None:
        if not proc.alive:
            return
        named = self._taskstats is not None and taskstats.complete(proc, self._taskstats, self._me)
        if named and self.on_exec is not None:
            self.on_exec(proc)
        proc.end_ns = end_ns or time.time_ns()
        self.on_end(proc)
