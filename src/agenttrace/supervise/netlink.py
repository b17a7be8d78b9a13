"""The kernel's process events (the netlink proc connector): fork, exec and exit of every process,
with exit statuses, as they happen. Needs CAP_NET_ADMIN (root, or a container that grants it);
where the kernel refuses, `open_connector()` returns None and the watcher polls /proc alone."""

from __future__ import annotations

import contextlib
import os
import socket
import struct
import time
from dataclasses import dataclass

NETLINK_CONNECTOR = 11
CN_IDX_PROC = 1
CN_VAL_PROC = 1
PROC_CN_MCAST_LISTEN = 1
PROC_CN_MCAST_IGNORE = 2
NLMSG_DONE = 3
PROC_EVENT_FORK = 0x1
PROC_EVENT_EXEC = 0x2
PROC_EVENT_EXIT = 0x80000000
_NLMSG = struct.Struct("=IHHII")
_CN_MSG = struct.Struct("=IIIIHH")
_EVENT = struct.Struct("=IIQ")
_HEADER = _NLMSG.size + _CN_MSG.size  # 36: where the proc_event starts
_DATA = _HEADER + _EVENT.size  # 52: where the event's union starts


@dataclass(frozen=True)
class ProcEvent:
    kind: str
    """fork | exec | exit | overrun (the kernel dropped events here: the socket's buffer was full)"""
    pid: int
    """The process (thread group id): the child for a fork."""
    ppid: int = 0
    """For a fork: the parent."""
    status: int = 0
    """For an exit: the wait status (as waitpid reports it)."""
    time_ns: int = 0
    """Wall-clock time of the event."""


class Connector:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._wall_offset = time.time_ns() - time.monotonic_ns()

    def fileno(self) -> int:
        return self.sock.fileno()

    def read(self) -> list[ProcEvent]:
        """The events waiting on the socket, without blocking."""
        events = []
        while True:
            try:
                data = self.sock.recv(65536, socket.MSG_DONTWAIT)
            except (BlockingIOError, InterruptedError):
                return events
            except OSError:  # ENOBUFS: the kernel dropped events; the /proc poll covers the gap
                events.append(ProcEvent("overrun", 0, time_ns=time.time_ns()))
                return events
            offset = 0
            while offset + _DATA <= len(data):
                length = _NLMSG.unpack_from(data, offset)[0]
                event = self._parse(data, offset)
                if event is not None:
                    events.append(event)
                if length <= 0:
                    break
                offset += (length + 3) & ~3

    def _parse(self, data: bytes, offset: int) -> ProcEvent | None:
        what, _cpu, stamp = _EVENT.unpack_from(data, offset + _HEADER)
        at = offset + _DATA
        when = self._wall_offset + stamp
        if what == PROC_EVENT_FORK and len(data) >= at + 16:
            _ppid, ptgid, cpid, ctgid = struct.unpack_from("=IIII", data, at)
            return ProcEvent("fork", ctgid, ptgid, time_ns=when) if cpid == ctgid else None
        if what == PROC_EVENT_EXEC and len(data) >= at + 8:
            pid, tgid = struct.unpack_from("=II", data, at)
            return ProcEvent("exec", tgid, time_ns=when) if pid == tgid else None
        if what == PROC_EVENT_EXIT and len(data) >= at + 16:
            pid, tgid, status, _signal = struct.unpack_from("=IIII", data, at)
            return ProcEvent("exit", tgid, status=status, time_ns=when) if pid == tgid else None
        return None

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._send(PROC_CN_MCAST_IGNORE)
        self.sock.close()

    def _send(self, op: int) -> None:
        payload = struct.pack("=I", op)
        cn = _CN_MSG.pack(CN_IDX_PROC, CN_VAL_PROC, 0, 0, len(payload), 0) + payload
        self.sock.send(_NLMSG.pack(_NLMSG.size + len(cn), NLMSG_DONE, 0, 0, os.getpid()) + cn)


SO_RCVBUFFORCE = 33
"""Like SO_RCVBUF, past the rmem_max limit (CAP_NET_ADMIN)."""


def open_connector() -> Connector | None:
    """Subscribe to process events, or None where that is not permitted (or not Linux)."""
    try:
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_CONNECTOR)
    except (OSError, AttributeError):
        return None
    try:
        # Every process on the host is reported here: a busy host fills the default buffer
        # (rmem_max, ~200 KiB) while the watcher waits for the GIL. Root may ask for more.
        for option in (SO_RCVBUFFORCE, socket.SO_RCVBUF):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, option, 4 << 20)
                break
        sock.bind((0, CN_IDX_PROC))
        connector = Connector(sock)
        connector._send(PROC_CN_MCAST_LISTEN)
    except OSError:
        sock.close()
        return None
    return connector
