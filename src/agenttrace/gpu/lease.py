"""Host-wide GPU leases: the dispatch guard's semaphore.

A lease on a device is an exclusive `flock` on `<lock dir>/<device uuid>.lock`. The lock dir is one
per host (`$AGENTTRACE_GPU_LOCK_DIR`, default `/tmp/agenttrace-gpu-leases`, made mode 1777 like
/tmp, its files 0666), so runs of any store and any user see one another. The kernel releases a
`flock` when the last descriptor of the lock's open file goes away, so a supervisor killed with
SIGKILL frees its devices at once: nothing needs cleaning up, and a holder record left behind by a
dead run is never believed (the lock is the truth, the record only says who holds it). The lock's
descriptor is close-on-exec, so the agent never inherits it.

Rules:
- never hold one device while waiting for another: every lock is tried without blocking; if one is
  taken, all are let go and the whole request is tried again (so `0,1` and `1,0` cannot deadlock);
- after a lock is taken, the path must still name the locked file (it may have been unlinked or
  replaced meanwhile); otherwise it is tried again;
- the holder record, `{"run_id", "pid", "since", "store", "devices"}` as JSON, is written into the
  locked file (truncate, write, fsync) and cleared at release.

An existing lock file is opened without `O_CREAT`: with `fs.protected_regular` a sticky directory
refuses `O_CREAT` on a file another user owns, even one the opener could write.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import random
import re
import stat
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from ..errors import ConfigError, GpuError

LOCK_DIR_ENV = "AGENTTRACE_GPU_LOCK_DIR"
DEFAULT_LOCK_DIR = "/tmp/agenttrace-gpu-leases"

WAIT_REPORT_S = 10.0
"""While waiting, `on_wait` is called when the wait starts and about this often after."""

SETTLE_S = 0.3
"""A lock found taken is tried again for this long before it counts as held, even with no wait: a
`holders()` probe, or another request letting go of what it took, holds a free device for a moment."""

_POLL_S = (0.05, 0.15)  # random pause between tries: two waiters do not keep colliding
_RECORD_MAX = 64 * 1024
_UUID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")


class DeviceLike(Protocol):
    """What a lease needs of a device (`agenttrace.gpu.nvml.Device` is one)."""

    @property
    def index(self) -> int: ...

    @property
    def uuid(self) -> str: ...

    @property
    def name(self) -> str: ...


@dataclass(frozen=True)
class Request:
    """A parsed `--gpu` value: named devices (indices as int, UUIDs as str), or `count` devices,
    any of them (`any:N`)."""

    devices: tuple[int | str, ...] = ()
    count: int | None = None

    def __str__(self) -> str:
        if self.count is not None:
            return f"any:{self.count}"
        return ",".join(str(d) for d in self.devices)


@dataclass(frozen=True)
class Holder:
    """Who holds a device's lease, as its holder record says. `run_id`, `pid` and `since` are None
    while the record is not written yet (or unreadable)."""

    index: int
    uuid: str
    run_id: str | None
    pid: int | None
    since: float | None
    store: str | None = None
    devices: tuple[str, ...] = ()

    def describe(self) -> str:
        """`run RUN (agenttrace pid P, since HH:MM:SS)`."""
        if self.run_id is None:
            return "another process (its holder record is missing or stale)"
        since = time.strftime("%H:%M:%S", time.localtime(self.since)) if self.since is not None else "?"
        return f"run {self.run_id} (agenttrace pid {self.pid}, since {since})"

    def as_dict(self) -> dict[str, object]:
        return {
            "run_id": self.run_id,
            "pid": self.pid,
            "since": self.since,
            "store": self.store,
            "devices": list(self.devices),
        }


def _label(device: DeviceLike) -> str:
    return f"GPU {device.index} ({device.uuid})"


# -- the request -----------------------------------------------------------------------------------


def parse_request(spec: str) -> Request:
    """Parse a `--gpu` value: `0`, `0,1`, UUIDs (`GPU-…`), a mix of both, or `any:N`.
    `ConfigError` for an empty value, a bad item, `any:0`, or a device named twice."""
    text = spec.strip()
    if not text:
        raise ConfigError("--gpu is empty; give device indices (0,1), UUIDs (GPU-...) or any:N")
    if text.lower().startswith("any:"):
        count = text[4:].strip()
        if not count.isdigit() or int(count) < 1:
            raise ConfigError(f"--gpu {spec!r}: any:N needs a count of 1 or more (any:1, any:2...)")
        return Request(count=int(count))
    items: list[int | str] = []
    seen: set[int | str] = set()
    for raw in text.split(","):
        item = raw.strip()
        if not item:
            raise ConfigError(f"--gpu {spec!r} has an empty item; separate devices with single commas")
        value: int | str
        if item.isdigit():
            value = int(item)
        elif item.lower().startswith(("gpu-", "mig-")) and _UUID.match(item):
            value = item
        else:
            raise ConfigError(
                f"--gpu {spec!r}: {item!r} is not a device index (0, 1...), a UUID (GPU-...) or any:N"
            )
        key = value.lower() if isinstance(value, str) else value
        if key in seen:
            raise ConfigError(f"--gpu {spec!r} names device {item} twice")
        seen.add(key)
        items.append(value)
    return Request(devices=tuple(items))


def resolve(request: Request, devices: Sequence[DeviceLike]) -> list[DeviceLike]:
    """The devices a named request means, in the order asked (an `any:N` request: all devices, by
    index). `GpuError` naming the devices that exist for one that does not."""
    if request.count is not None:
        if request.count > len(devices):
            raise GpuError(
                f"--gpu any:{request.count} asks for {request.count} GPUs; this host has "
                f"{len(devices)}: {_existing(devices)}"
            )
        return sorted(devices, key=lambda d: d.index)
    chosen: list[DeviceLike] = []
    for item in request.devices:
        found = _find(item, devices)
        if found is None:
            raise GpuError(f"no GPU {item} on this host; the GPUs here are: {_existing(devices)}")
        if any(d.uuid == found.uuid for d in chosen):
            raise ConfigError(f"--gpu {request} names {_label(found)} twice")
        chosen.append(found)
    return chosen


def _find(item: int | str, devices: Sequence[DeviceLike]) -> DeviceLike | None:
    if isinstance(item, int):
        return next((d for d in devices if d.index == item), None)
    wanted = item.lower()
    exact = [d for d in devices if d.uuid.lower() == wanted]
    if exact:
        return exact[0]
    prefixed = [d for d in devices if d.uuid.lower().startswith(wanted)]
    return prefixed[0] if len(prefixed) == 1 else None


def _existing(devices: Sequence[DeviceLike]) -> str:
    return ", ".join(f"{d.index} ({d.uuid}, {d.name})" for d in devices) or "none"


# -- the lock dir and lock files -------------------------------------------------------------------


def lock_dir_path(lock_dir: str | os.PathLike[str] | None = None) -> Path:
    """The lock dir: the one given, else `$AGENTTRACE_GPU_LOCK_DIR`, else /tmp/agenttrace-gpu-leases."""
    if lock_dir is not None:
        return Path(lock_dir)
    return Path(os.environ.get(LOCK_DIR_ENV) or DEFAULT_LOCK_DIR)


def _ensure_dir(path: Path) -> None:
    """Create the lock dir, mode 1777 (sticky, like /tmp: everyone may add a lock file, nobody may
    remove another's). One that exists must be a directory, not a link."""
    try:
        os.mkdir(path, 0o1777)
    except FileExistsError:
        pass
    except OSError as e:
        raise GpuError(f"cannot create the GPU lock dir {path}: {e.strerror}") from None
    else:
        with contextlib.suppress(OSError):
            os.chmod(path, 0o1777)  # mkdir's mode is cut by the umask
    try:
        info = os.lstat(path)
    except OSError as e:
        raise GpuError(f"cannot use the GPU lock dir {path}: {e.strerror}") from None
    if not stat.S_ISDIR(info.st_mode):
        raise GpuError(f"the GPU lock dir {path} is not a directory (set {LOCK_DIR_ENV} to another)")


def _lock_path(directory: Path, uuid: str) -> Path:
    if not _UUID.match(uuid):
        raise GpuError(f"GPU UUID {uuid!r} cannot name a lock file")
    return directory / f"{uuid}.lock"


def _open_lock(path: Path) -> int:
    """Open the lock file for reading and writing, creating it (0666) if it is not there."""
    flags = os.O_RDWR | os.O_CLOEXEC | os.O_NOFOLLOW
    for _ in range(100):
        try:
            return os.open(path, flags)
        except FileNotFoundError:
            pass
        except OSError as e:
            raise GpuError(f"cannot open the GPU lock file {path}: {e.strerror}") from None
        try:
            fd = os.open(path, flags | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue  # created by someone else just now: open theirs
        except OSError as e:
            hint = f" (the lock dir must be writable by every user: chmod 1777 {path.parent})"
            raise GpuError(f"cannot create the GPU lock file {path}: {e.strerror}{hint}") from None
        with contextlib.suppress(OSError):
            os.fchmod(fd, 0o666)  # the umask cut it; every user's runs must be able to lock it
        return fd
    raise GpuError(f"the GPU lock file {path} keeps appearing and disappearing; cannot open it")


def _try_lock(path: Path) -> int | None:
    """The fd of the lock file, exclusively locked and still the file the path names; None if
    someone holds it."""
    for _ in range(100):
        fd = _open_lock(path)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            os.close(fd)
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                return None
            raise GpuError(f"cannot lock the GPU lock file {path}: {e.strerror}") from None
        if _same_file(fd, path):
            return fd
        os.close(fd)  # unlinked or replaced between open and lock: lock what the path names now
    raise GpuError(f"the GPU lock file {path} keeps being replaced; cannot lock it")


def _same_file(fd: int, path: Path) -> bool:
    try:
        now = os.lstat(path)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (now.st_dev, now.st_ino) == (mine.st_dev, mine.st_ino)


def _read_record(fd: int) -> dict[str, object] | None:
    try:
        data = os.pread(fd, _RECORD_MAX, 0)
        record = json.loads(data) if data.strip() else None
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def _holder(device: DeviceLike, record: dict[str, object] | None) -> Holder:
    """A Holder from a record read from a file whose lock is held. A record of a process that is
    gone is stale (the holder that took the lock has not written its own yet)."""
    if record is None:
        return Holder(device.index, device.uuid, None, None, None)
    pid = record.get("pid")
    run_id = record.get("run_id")
    since = record.get("since")
    store = record.get("store")
    listed = record.get("devices")
    if not isinstance(pid, int) or not isinstance(run_id, str) or not _alive(pid):
        return Holder(device.index, device.uuid, None, None, None)
    return Holder(
        index=device.index,
        uuid=device.uuid,
        run_id=run_id,
        pid=pid,
        since=float(since) if isinstance(since, int | float) else None,
        store=store if isinstance(store, str) else None,
        devices=tuple(str(d) for d in listed) if isinstance(listed, list) else (),
    )


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's
    return True


def _peek(path: Path, device: DeviceLike) -> Holder | None:
    """Who holds the lock file now, or None if nobody does. The probe takes a shared lock for a
    moment: it fails only while someone holds the exclusive one."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise GpuError(f"cannot read the GPU lock file {path}: {e.strerror}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                return _holder(device, _read_record(fd))
            raise GpuError(f"cannot probe the GPU lock file {path}: {e.strerror}") from None
        return None  # the lock was free (whatever a stale record in it says)
    finally:
        os.close(fd)


def holders(
    devices: Sequence[DeviceLike], lock_dir: str | os.PathLike[str] | None = None
) -> dict[str, Holder | None]:
    """Who holds each device's lease now, by UUID (None: free). A device whose last holder died is
    free, whatever its stale record says: the kernel released the lock."""
    directory = lock_dir_path(lock_dir)
    return {d.uuid: _peek(_lock_path(directory, d.uuid), d) for d in devices}


# -- the lease -------------------------------------------------------------------------------------


@dataclass
class Lease:
    """Devices held for a run. `release()` lets them go (idempotent)."""

    devices: list[DeviceLike]
    run_id: str
    pid: int
    acquired_at: float
    """epoch seconds, taken after every lock was held"""
    waited_s: float
    lock_dir: Path
    _fds: dict[str, int] = field(default_factory=dict, repr=False)
    released_at: float | None = None
    """epoch seconds, taken before the locks were let go"""
    lost: str | None = None
    """why the lease was found lost at release (the final `check()`), else None"""

    @property
    def uuids(self) -> list[str]:
        return [d.uuid for d in self.devices]

    def env(self) -> dict[str, str]:
        """What the agent's environment gets: its leased devices only, by UUID."""
        visible = ",".join(self.uuids)
        return {
            "CUDA_VISIBLE_DEVICES": visible,
            "NVIDIA_VISIBLE_DEVICES": visible,
            "CUDA_DEVICE_ORDER": "PCI_BUS_ID",
        }

    def check(self) -> str | None:
        """None while the lease is intact; else why it is lost: a lock file was removed or replaced,
        or its holder record no longer names this run."""
        if self.released_at is not None and not self._fds:
            return "the lease was released"
        reasons = []
        for device in self.devices:
            fd = self._fds.get(device.uuid)
            path = _lock_path(self.lock_dir, device.uuid)
            if fd is None:
                reasons.append(f"{_label(device)}: its lock was let go")
                continue
            try:
                now = os.lstat(path)
            except FileNotFoundError:
                reasons.append(f"{_label(device)}: its lock file {path} was removed")
                continue
            except OSError as e:
                reasons.append(f"{_label(device)}: its lock file {path} cannot be read ({e.strerror})")
                continue
            mine = os.fstat(fd)
            if (now.st_dev, now.st_ino) != (mine.st_dev, mine.st_ino):
                reasons.append(f"{_label(device)}: its lock file {path} was replaced")
                continue
            record = _read_record(fd)
            if record is None or record.get("run_id") != self.run_id or record.get("pid") != self.pid:
                said = "nothing readable" if record is None else f"run {record.get('run_id')!r}"
                reasons.append(
                    f"{_label(device)}: its holder record in {path} was rewritten (it names {said}, "
                    f"not run {self.run_id})"
                )
        return "; ".join(reasons) or None

    def release(self) -> str | None:
        """Let the devices go; returns (and keeps in `lost`) the final `check()`. Never raises."""
        if self.released_at is not None:
            return self.lost
        self.released_at = time.time()
        try:
            self.lost = self.check()
        except Exception as e:  # release never raises
            self.lost = f"the lease could not be checked: {type(e).__name__}: {e}"
        for uuid, fd in list(self._fds.items()):
            try:
                if self.lost is None:
                    os.ftruncate(fd, 0)  # clear our record (only where it is ours to clear)
            except OSError:
                pass
            finally:
                with contextlib.suppress(OSError):
                    os.close(fd)  # the kernel lets the lock go
            del self._fds[uuid]
        return self.lost

    def record(self) -> dict[str, object]:
        """What a run records of its lease."""
        return {
            "devices": self.uuids,
            "indices": [d.index for d in self.devices],
            "acquired_at": self.acquired_at,
            "waited_s": self.waited_s,
            "released_at": self.released_at,
            "lost": self.lost,
            "lock_dir": str(self.lock_dir),
        }

    def __enter__(self) -> Lease:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _write_record(fd: int, path: Path, record: dict[str, object]) -> None:
    data = json.dumps(record, sort_keys=True).encode() + b"\n"
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, data, 0)
        os.fsync(fd)
    except OSError as e:
        raise GpuError(f"cannot write the holder record into {path}: {e.strerror}") from None


def _take(
    wanted: list[DeviceLike], count: int | None, directory: Path
) -> tuple[dict[str, int], list[DeviceLike], list[DeviceLike]]:
    """One try without blocking: (fds, taken devices, busy devices). Either every device asked
    for (or `count` of them) is taken, or none is (what was taken is let go)."""
    fds: dict[str, int] = {}
    taken: list[DeviceLike] = []
    busy: list[DeviceLike] = []
    try:
        for device in wanted:
            if count is not None and len(taken) == count:
                break
            fd = _try_lock(_lock_path(directory, device.uuid))
            if fd is None:
                busy.append(device)
                if count is None:
                    break
                continue
            fds[device.uuid] = fd
            taken.append(device)
    except BaseException:
        for fd in fds.values():
            os.close(fd)
        raise
    if len(taken) < (count if count is not None else len(wanted)):
        for fd in fds.values():
            os.close(fd)
        return {}, [], busy
    return fds, taken, []


def acquire(
    request: Request | str,
    devices: Sequence[DeviceLike],
    *,
    run_id: str,
    store: str | os.PathLike[str] | None,
    supervisor_pid: int | None = None,
    wait_s: float,
    on_wait: Callable[[list[Holder]], None] | None = None,
    lock_dir: str | os.PathLike[str] | None = None,
) -> Lease:
    """Lease the devices a request asks for, waiting up to `wait_s` seconds for held ones (0: fail at
    once). `on_wait` hears who holds what when the wait starts and about every 10 s after.

    `GpuError` for a device that does not exist, a lock dir that cannot be used, or devices still
    held when the wait runs out (naming their holders)."""
    if isinstance(request, str):
        request = parse_request(request)
    if wait_s < 0:
        raise ConfigError(f"the GPU wait must not be negative (got {wait_s})")
    pid = os.getpid() if supervisor_pid is None else supervisor_pid
    wanted = resolve(request, devices)
    order = sorted(wanted, key=lambda d: d.index)  # one order for everyone: fewer collisions
    directory = lock_dir_path(lock_dir)
    _ensure_dir(directory)

    started = time.monotonic()
    busy_since: float | None = None
    reported_at: float | None = None
    while True:
        fds, taken, _ = _take(order, request.count, directory)
        if fds:
            break
        now = time.monotonic()
        if busy_since is None:
            busy_since = now
        elapsed = now - started
        settling = now - busy_since < SETTLE_S
        if not settling and elapsed >= wait_s:
            raise GpuError(_held_message(request, wanted, directory, wait_s))
        if not settling and (reported_at is None or now - reported_at >= WAIT_REPORT_S):
            reported_at = now
            if on_wait is not None:
                held = [h for h in holders(wanted, directory).values() if h is not None]
                with contextlib.suppress(Exception):
                    on_wait(held)
        pause = random.uniform(*_POLL_S)
        if not settling:
            pause = min(pause, max(0.0, wait_s - elapsed))
        time.sleep(pause)

    lease = Lease(
        devices=taken if request.count is not None else wanted,
        run_id=run_id,
        pid=pid,
        acquired_at=time.time(),
        waited_s=time.monotonic() - started,
        lock_dir=directory,
        _fds=fds,
    )
    record = {
        "run_id": run_id,
        "pid": pid,
        "since": lease.acquired_at,
        "store": None if store is None else str(store),
        "devices": lease.uuids,
    }
    try:
        for uuid, fd in fds.items():
            _write_record(fd, _lock_path(directory, uuid), record)
    except BaseException:
        lease.release()
        raise
    return lease


def _held_message(request: Request, wanted: list[DeviceLike], directory: Path, wait_s: float) -> str:
    found = holders(wanted, directory)
    held = [(d, found[d.uuid]) for d in wanted if found[d.uuid] is not None]
    waited = f" (waited {_duration(wait_s)})" if wait_s > 0 else ""
    hint = "wait with --gpu-wait DUR, or pick another device (agenttrace gpus)"
    if request.count is not None:
        free = len(wanted) - len(held)
        who = "; ".join(f"{_label(d)} is leased by {h.describe()}" for d, h in held if h is not None)
        return (
            f"--gpu any:{request.count}: only {free} of {len(wanted)} GPUs are free{waited}: {who}: "
            f"wait with --gpu-wait DUR, or ask for fewer (agenttrace gpus)"
        )
    if not held:  # let go between our last try and this look: say so rather than name nobody
        return f"--gpu {request}: the devices stayed busy{waited}: {hint}"
    who = "; ".join(f"{_label(d)} is leased by {h.describe()}" for d, h in held if h is not None)
    return f"{who}{waited}: {hint}"


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:g} s"
    return f"{seconds / 60:.1f} min"
