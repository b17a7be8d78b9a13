"""The kernel's record of every exiting task (generic-netlink TASKSTATS): its name (`comm`), exit
status, parent and start time, sent as it exits, so a process that ran for a microsecond and was
reaped before /proc could be read is still named.

Registering for exit records needs CAP_NET_ADMIN in the initial user and pid namespaces, and a
kernel built with taskstats; `open_listener()` returns None wherever any of that is missing, and
the watcher works as before. The kernel sends the record before the proc connector's exit event,
so once that event is read the record is waiting on this socket.

The listener hears every task that exits on the machine, not only ours: records are kept in a
bounded cache (the newest `CACHE_SIZE`) and the watcher looks up the pids it follows.
"""

from __future__ import annotations

import contextlib
import os
import socket
import struct
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .watcher import Proc

NETLINK_GENERIC = 16
GENL_ID_CTRL = 0x10
CTRL_CMD_GETFAMILY = 3
CTRL_ATTR_FAMILY_ID = 1
CTRL_ATTR_FAMILY_NAME = 2
NLM_F_REQUEST = 0x1
NLM_F_ACK = 0x4
NLMSG_ERROR = 0x2
SO_RCVBUFFORCE = 33
TASKSTATS_CMD_GET = 1
TASKSTATS_CMD_NEW = 2
TASKSTATS_CMD_ATTR_REGISTER_CPUMASK = 3
TASKSTATS_CMD_ATTR_DEREGISTER_CPUMASK = 4
TASKSTATS_TYPE_PID = 1
TASKSTATS_TYPE_TGID = 2
TASKSTATS_TYPE_STATS = 3
TASKSTATS_TYPE_AGGR_PID = 4
TASKSTATS_TYPE_AGGR_TGID = 5
NLA_TYPE_MASK = 0x3FFF  # without NLA_F_NESTED / NLA_F_NET_BYTEORDER

CACHE_SIZE = 4096
"""Exit records kept (all the machine's, newest first out of the way last): enough for the exits
between two reads of the watcher, bounded whatever the machine does."""

_NLMSG = struct.Struct("=IHHII")
_GENL = struct.Struct("=BBH")
_NLA = struct.Struct("=HH")
_HEAD = _NLMSG.size + _GENL.size  # 20: where a generic-netlink message's attributes start

# struct taskstats (include/uapi/linux/taskstats.h): offsets of the fields read, by the version
# that added them. Fields are only ever appended, so a record at least this long has them.
_VERSION = struct.Struct("=H")
_EXITCODE = struct.Struct("=I")  # @4, version 1
_COMM_AT, _COMM_LEN = 80, 32  # ac_comm, version 2 (basic accounting)
_IDS = struct.Struct("=III")  # ac_pid, ac_ppid, ac_btime @128, version 2
_IDS_AT = 128
_BTIME64 = struct.Struct("=Q")  # @344, version 10
_BTIME64_AT, _BTIME64_SINCE = 344, 10
_TGID = struct.Struct("=I")  # @368, version 12
_TGID_AT, _TGID_SINCE = 368, 12


@dataclass(frozen=True)
class TaskExit:
    """One exited task, as the kernel reported it."""

    pid: int
    ppid: int
    """Its parent's thread group id at exit (after any re-parenting); 0 if unknown."""
    comm: str
    """The command name: the file name it last exec'd (at most 15 bytes), or what it set with prctl."""
    exit_status: int
    """As waitpid reports it (exit code << 8, or the signal)."""
    start_s: int
    """Start time, whole seconds since the epoch (the kernel's, rounded down: within a second)."""
    tgid: int | None = None
    """Its thread group (process) id, from version 12 on; None before."""

    def started_near(self, start_ns: int) -> bool:
        """Could this be the process that started at `start_ns` (not another that reused its pid)?"""
        return abs(start_ns - self.start_s * 1_000_000_000) <= 2_000_000_000


def parse_stats(data: bytes | memoryview, pid: int) -> TaskExit | None:
    """A `struct taskstats`, laid out by the version it says it is; None if too short to name it."""
    if len(data) < _IDS_AT + _IDS.size:
        return None
    (version,) = _VERSION.unpack_from(data, 0)
    if version < 2:
        return None
    (exit_status,) = _EXITCODE.unpack_from(data, 4)
    comm = bytes(data[_COMM_AT : _COMM_AT + _COMM_LEN]).split(b"\0", 1)[0].decode("utf-8", "replace")
    ac_pid, ppid, start_s = _IDS.unpack_from(data, _IDS_AT)
    if version >= _BTIME64_SINCE and len(data) >= _BTIME64_AT + _BTIME64.size:
        (start_s,) = _BTIME64.unpack_from(data, _BTIME64_AT)
    tgid = None
    if version >= _TGID_SINCE and len(data) >= _TGID_AT + _TGID.size:
        (tgid,) = _TGID.unpack_from(data, _TGID_AT)
    return TaskExit(pid or ac_pid, ppid, comm, exit_status, start_s, tgid)


def _attributes(data: bytes | memoryview, start: int, end: int) -> list[tuple[int, memoryview]]:
    view = memoryview(data)
    found = []
    while start + _NLA.size <= end:
        length, kind = _NLA.unpack_from(view, start)
        if length < _NLA.size or start + length > end:
            break
        found.append((kind & NLA_TYPE_MASK, view[start + _NLA.size : start + length]))
        start += (length + 3) & ~3
    return found


def parse_message(data: bytes | memoryview) -> list[TaskExit]:
    """The exit records in one TASKSTATS_CMD_NEW message (from its generic-netlink header on): the
    task's own (TASKSTATS_TYPE_AGGR_PID); a thread group's aggregate (AGGR_TGID) carries no name
    and is only taken where it has one."""
    records = []
    for kind, nested in _attributes(data, _GENL.size, len(data)):
        if kind not in (TASKSTATS_TYPE_AGGR_PID, TASKSTATS_TYPE_AGGR_TGID):
            continue
        pid, stats = 0, None
        for inner, value in _attributes(nested, 0, len(nested)):
            if inner in (TASKSTATS_TYPE_PID, TASKSTATS_TYPE_TGID) and len(value) >= 4:
                (pid,) = struct.unpack_from("=I", value, 0)
            elif inner == TASKSTATS_TYPE_STATS:
                stats = value
        record = parse_stats(stats, pid) if stats is not None else None
        if record is None or (kind == TASKSTATS_TYPE_AGGR_TGID and not record.comm):
            continue
        if kind == TASKSTATS_TYPE_AGGR_PID and record.tgid not in (None, record.pid):
            continue  # a thread that is not its process's leader: the leader's record names it
        records.append(record)
    return records


class Listener:
    """A socket registered for the exit records of every CPU, and a bounded cache of what it read."""

    def __init__(self, sock: socket.socket, family: int, cpus: str) -> None:
        self.sock = sock
        self._family = family
        self._cpus = cpus
        self._seq = 0
        self.exits: OrderedDict[int, TaskExit] = OrderedDict()
        """The newest exit record of each pid, oldest first (at most CACHE_SIZE)."""
        self.dropped = 0
        """Times the kernel dropped records (the socket's buffer was full)."""

    def fileno(self) -> int:
        return self.sock.fileno()

    def drain(self) -> None:
        """Read the records waiting on the socket, without blocking."""
        while True:
            try:
                data = self.sock.recv(1 << 16, socket.MSG_DONTWAIT)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # ENOBUFS: some were dropped; those processes stay as /proc left them
                self.dropped += 1
                continue
            self._take(data)

    def _take(self, data: bytes) -> int | None:
        """Cache the records in `data`; the error of an acknowledgement in it, if one is."""
        offset, error = 0, None
        while offset + _NLMSG.size <= len(data):
            length, kind, _flags, _seq, _port = _NLMSG.unpack_from(data, offset)
            if length < _NLMSG.size or offset + length > len(data):
                break
            if kind == NLMSG_ERROR and length >= _NLMSG.size + 4:
                (error,) = struct.unpack_from("=i", data, offset + _NLMSG.size)
            elif kind == self._family and length >= _HEAD:
                (command,) = struct.unpack_from("=B", data, offset + _NLMSG.size)
                if command == TASKSTATS_CMD_NEW:
                    for record in parse_message(memoryview(data)[offset + _NLMSG.size : offset + length]):
                        self._keep(record)
            offset += (length + 3) & ~3
        return error

    def _keep(self, record: TaskExit) -> None:
        self.exits.pop(record.pid, None)
        self.exits[record.pid] = record
        while len(self.exits) > CACHE_SIZE:
            self.exits.popitem(last=False)

    def exit_of(self, pid: int, start_ns: int) -> TaskExit | None:
        """The exit record of the process `pid` that started at `start_ns`, if the kernel sent one."""
        self.drain()
        record = self.exits.get(pid)
        return record if record is not None and record.started_near(start_ns) else None

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._request(TASKSTATS_CMD_ATTR_DEREGISTER_CPUMASK)
        self.sock.close()

    def _request(self, attribute: int) -> None:
        self._seq += 1
        send(self.sock, self._family, TASKSTATS_CMD_GET, attribute, self._cpus.encode() + b"\0", self._seq)


def send(sock: socket.socket, family: int, command: int, attribute: int, value: bytes, seq: int) -> None:
    attr = _NLA.pack(_NLA.size + len(value), attribute) + value
    attr += b"\0" * (-len(attr) % 4)
    body = _GENL.pack(command, 1, 0) + attr
    sock.send(_NLMSG.pack(_NLMSG.size + len(body), family, NLM_F_REQUEST | NLM_F_ACK, seq, 0) + body)


def _family_id(sock: socket.socket) -> int | None:
    send(sock, GENL_ID_CTRL, CTRL_CMD_GETFAMILY, CTRL_ATTR_FAMILY_NAME, b"TASKSTATS\0", 1)
    for _ in range(4):
        data = sock.recv(1 << 16)
        offset = 0
        while offset + _HEAD <= len(data):
            length, kind = _NLMSG.unpack_from(data, offset)[:2]
            if length < _NLMSG.size:
                return None
            if kind == NLMSG_ERROR:
                (error,) = struct.unpack_from("=i", data, offset + _NLMSG.size)
                if error != 0:
                    return None
            elif kind == GENL_ID_CTRL:
                message = data[offset + _NLMSG.size : offset + length]
                for attr, value in _attributes(message, _GENL.size, len(message)):
                    if attr == CTRL_ATTR_FAMILY_ID and len(value) >= 2:
                        return int(struct.unpack_from("=H", value, 0)[0])
            offset += (length + 3) & ~3
    return None


def _possible_cpus() -> str:
    try:
        with open("/sys/devices/system/cpu/possible") as f:
            return f.read().strip()
    except OSError:
        return f"0-{max((os.cpu_count() or 1) - 1, 0)}"


def open_listener() -> Listener | None:
    """Register for every CPU's exit records, or None where the kernel does not allow it."""
    try:
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_GENERIC)
    except (OSError, AttributeError):
        return None
    try:
        sock.settimeout(1.0)
        sock.bind((0, 0))
        for option in (SO_RCVBUFFORCE, socket.SO_RCVBUF):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, option, 2 << 20)
                break
        family = _family_id(sock)
        if family is None:
            sock.close()
            return None
        listener = Listener(sock, family, _possible_cpus())
        listener._request(TASKSTATS_CMD_ATTR_REGISTER_CPUMASK)
        error = None
        for _ in range(64):  # exits on other CPUs may come before the acknowledgement
            error = listener._take(sock.recv(1 << 16))
            if error is not None:
                break
        if error != 0:
            sock.close()
            return None
        sock.setblocking(False)
    except (OSError, ValueError, struct.error):
        sock.close()
        return None
    return listener


def complete(proc: Proc, listener: Listener, reaper: int) -> bool:
    """Fill in what the watcher could not read of an ended process from its exit record: its name
    (the kernel's `comm`; its argv stays unknown: a name is not a command line) where it has none
    or only its parent's, and its exit status where it has none. True if it was named."""
    unnamed = not proc.name or proc.name == "?" or proc.exec_unread
    if not unnamed and proc.exit_known:
        return False
    record = listener.exit_of(proc.pid, proc.start_ns)
    if record is None and proc.ppid == reaper:  # re-parented to us and seen only when reaped
        record = listener.exits.get(proc.pid)
        record = record if record is not None and record.ppid == reaper else None
    if record is None:
        return False
    if not proc.exit_known:
        proc.set_status(record.exit_status)
    if not unnamed or not record.comm:
        return False
    proc.argv, proc.name, proc.comm, proc.exec_unread = [], record.comm, record.comm, False
    return True
