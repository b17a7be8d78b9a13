"""Optional OS protection of the store: the agent's mount namespace sees it read-only.

The agent runs as the same user as agenttrace, so file permissions cannot stop it from writing into
the store and forging its own record. Linux mount namespaces can: the agent's process is started in
a namespace of its own where the store is a read-only bind mount of itself, while agenttrace, on the
host, keeps writing into the same directory.

    preexec = read_only_paths_preexec([store])
    try:
        child = subprocess.Popen(command, env=env, cwd=cwd, preexec_fn=preexec)
    except subprocess.SubprocessError as exc:
        raise preexec.error(exc) from exc

In the child, before exec: unshare(CLONE_NEWNS) with CAP_SYS_ADMIN (root); otherwise, or if that
is refused, unshare(CLONE_NEWUSER | CLONE_NEWNS) with the user's own uid and gid mapped to themselves
(files keep their owner, the agent keeps its uid). Then the mount tree is made private, so nothing
propagates back to the host, each path is bind-mounted onto itself (MS_REC) and remounted read-only,
mount points below it included, repeating the flags the kernel will not let a user namespace clear
(nosuid, nodev, noexec, atime). A working directory inside a protected path is entered again so
that it, too, is on the read-only mount. Everything else (paths as bytes, flags, id maps, messages)
is computed beforehand, in the parent.

Requirements: Linux; root with CAP_SYS_ADMIN, or unprivileged user namespaces (not refused by
kernel.unprivileged_userns_clone=0, user.max_user_namespaces=0, AppArmor's
kernel.apparmor_restrict_unprivileged_userns=1, or a seccomp filter such as a container runtime's
default profile); the process must be dumpable (it is, unless it changed uid without exec).
`protection_available()` says whether that holds here and, if not, why.

What it protects: the given paths, and mounts below them, against every write by the agent and its
descendants (create, modify, rename, delete, chmod: EROFS), whatever their working directory; the
rest of the file system stays writable; agenttrace and other host processes see no change. As a
non-root user the agent cannot undo it: it holds no capability in its namespace, a namespace of its
own gets the mounts locked read-only, and /proc/PID/root of processes outside is refused to it.

What it does not: an agent that runs as root can undo it (umount) or go around it; other ways to the
same files stay open (another mount of the same file system, a service acting for the same user on
the host: systemd --user over D-Bus, sshd, a tmux server, the Docker socket); the agent can still
signal agenttrace. In a user namespace, setuid programs (sudo, su) do not gain privileges and the
agent's other groups show as nogroup (access to files is unchanged).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import mmap
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import ConfigError

CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_NOSYMFOLLOW = 0x100
MS_NOATIME = 0x400
MS_NODIRATIME = 0x800
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 0x40000
MS_RELATIME = 0x200000
MS_STRICTATIME = 0x1000000

PR_GET_DUMPABLE = 3

# statvfs f_flag bits (ST_*) and the mount flags a remount must repeat: inside a user namespace the
# kernel refuses a remount that would clear a flag the mount had when the namespace was made.
_KEPT_FLAGS = (
    (os.ST_NOSUID, MS_NOSUID),
    (os.ST_NODEV, MS_NODEV),
    (os.ST_NOEXEC, MS_NOEXEC),
    (os.ST_NODIRATIME, MS_NODIRATIME),
    (getattr(os, "ST_NOSYMFOLLOW", 0x2000), MS_NOSYMFOLLOW),
)

PREFIX = "cannot make the store read-only for the agent"

# How the child went: first byte of the shared page, then a 2-byte length and a UTF-8 message.
_NOT_RUN, _MOUNT_NS, _USER_NS, _FAILED = 0, 1, 2, 3
MODES = {_MOUNT_NS: "mount namespace", _USER_NS: "user and mount namespace"}
_PAGE = 4096


class ProtectionError(ConfigError):
    """The store cannot be made read-only for the agent here (the OS refuses, or a path is missing)."""


def _load_libc() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        unshare, mount, prctl = libc.unshare, libc.mount, libc.prctl
    except (OSError, AttributeError):
        return None
    unshare.argtypes = [ctypes.c_int]
    unshare.restype = ctypes.c_int
    mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_void_p]
    mount.restype = ctypes.c_int
    prctl.restype = ctypes.c_int
    return libc


_libc = _load_libc()


def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def _remount_flags(path: Path) -> int:
    """MS_BIND | MS_REMOUNT | MS_RDONLY plus the flags `path`'s mount has now (they may be locked)."""
    f_flag = os.statvfs(path).f_flag
    flags = MS_BIND | MS_REMOUNT | MS_RDONLY
    for st, ms in _KEPT_FLAGS:
        if f_flag & st:
            flags |= ms
    if f_flag & os.ST_NOATIME:
        flags |= MS_NOATIME
    elif f_flag & os.ST_RELATIME:
        flags |= MS_RELATIME
    else:
        flags |= MS_STRICTATIME
    return flags


def _unescape(field: bytes) -> bytes:
    return re.sub(rb"\\([0-7]{3})", lambda m: bytes([int(m.group(1), 8)]), field)


def _mounts_below(path: bytes) -> list[bytes]:
    """Mount points strictly below `path` (a resolved path), from /proc/self/mountinfo."""
    try:
        with open("/proc/self/mountinfo", "rb") as f:
            lines = f.read().splitlines()
    except OSError:
        return []
    below = path.rstrip(b"/") + b"/"
    found = {_unescape(line.split()[4]) for line in lines if len(line.split()) > 4}
    return sorted((m for m in found if m.startswith(below)), key=lambda m: (m.count(b"/"), m))


def _mount(source: bytes | None, target: bytes, flags: int, what: str) -> None:
    if _libc.mount(source, target, None, flags, None) != 0:
        raise ProtectionError(f"{PREFIX}: {what}: {os.strerror(ctypes.get_errno())}")


def _id_maps(uid: int, gid: int) -> tuple[bytes, bytes]:
    return b"%d %d 1\n" % (uid, uid), b"%d %d 1\n" % (gid, gid)


class ReadOnlyPaths:
    """A `preexec_fn` that starts the child in a mount namespace where the given paths are read-only.

    Build it in the parent (`read_only_paths_preexec`), pass it to one `subprocess.Popen`. If the child
    cannot set the namespace up, Popen raises `subprocess.SubprocessError` (Python keeps no message);
    `error(exc)` returns the `ProtectionError` saying what failed, as the child recorded it.
    """

    def __init__(self, paths: Sequence[Path]) -> None:
        if _libc is None:
            raise ProtectionError(f"{PREFIX}: mount namespaces need Linux (this is {sys.platform})")
        # (target, mount flags, what failed in words): everything the child needs, made here.
        binds: list[tuple[bytes, int, str]] = []
        remounts: list[tuple[bytes, int, str]] = []
        for given in paths:
            try:
                real = Path(given).resolve(strict=True)
                if real == Path(real.anchor):
                    raise ProtectionError(
                        f"{PREFIX}: {given} is the root directory, which cannot be protected"
                    )
                binds.append((os.fsencode(real), MS_BIND | MS_REC, f"bind-mount {real} onto itself"))
                for path in [real, *(Path(os.fsdecode(m)) for m in _mounts_below(os.fsencode(real)))]:
                    remounts.append((os.fsencode(path), _remount_flags(path), f"remount {path} read-only"))
            except OSError as exc:
                raise ProtectionError(f"{PREFIX}: {exc.filename or given}: {exc.strerror}") from exc
        self.paths = [Path(os.fsdecode(target)) for target, _, _ in binds]
        self._binds = tuple(binds)
        self._remounts = tuple(remounts)
        self._uid, self._gid = os.geteuid(), os.getegid()
        self._maps = _id_maps(self._uid, self._gid)
        self._shared = mmap.mmap(-1, _PAGE)  # MAP_SHARED | MAP_ANONYMOUS: the child writes, we read

    # -- in the child, between fork and exec ----------------------------------------------------------

    def __call__(self) -> None:
        try:
            mode = self._enter_namespace()
            _mount(None, b"/", MS_REC | MS_PRIVATE, "make the mount tree private (/)")
            for target, flags, what in self._binds:
                _mount(target, target, flags, what)
            for target, flags, what in self._remounts:
                _mount(None, target, flags, what)
            self._rechdir()
        except ProtectionError as exc:
            self._record(_FAILED, str(exc))
            raise
        self._record(mode, "")

    def _enter_namespace(self) -> int:
        if _libc.unshare(CLONE_NEWNS) == 0:
            return _MOUNT_NS
        first = ctypes.get_errno()
        if first != errno.EPERM:
            raise ProtectionError(f"{PREFIX}: unshare(CLONE_NEWNS): {os.strerror(first)}")
        # Our ids before the unshare (after it they read as the overflow id until mapped); a caller's
        # preexec that ran before this one may have changed them since we were built.
        ids = os.geteuid(), os.getegid()
        uid_map, gid_map = self._maps if ids == (self._uid, self._gid) else _id_maps(*ids)
        if _libc.unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0:
            err = ctypes.get_errno()
            why = f"unshare(CLONE_NEWUSER|CLONE_NEWNS): {os.strerror(err)}"
            if ids[0] == 0:
                why = f"unshare(CLONE_NEWNS): {os.strerror(first)}; {why}"
            else:
                why += " (not root, and this system refuses unprivileged user namespaces)"
            raise ProtectionError(f"{PREFIX}: {why}")
        self._write(b"/proc/self/setgroups", b"deny", missing_ok=True)
        self._write(b"/proc/self/uid_map", uid_map)
        self._write(b"/proc/self/gid_map", gid_map)
        return _USER_NS

    def _rechdir(self) -> None:
        """A working directory inside a protected path still points below the new mount: look it up again."""
        try:
            cwd = os.getcwdb()
        except OSError:
            return  # deleted: nothing can be written through it anyway
        if any(cwd == target or cwd.startswith(target + b"/") for target, _, _ in self._binds):
            try:
                os.chdir(cwd)
            except OSError as exc:
                raise ProtectionError(f"{PREFIX}: chdir {os.fsdecode(cwd)}: {exc.strerror}") from None

    def _write(self, path: bytes, data: bytes, missing_ok: bool = False) -> None:
        try:
            fd = os.open(path, os.O_WRONLY)
            try:
                os.write(fd, data)
            finally:
                os.close(fd)
        except OSError as exc:
            if missing_ok and exc.errno == errno.ENOENT:
                return
            why = f"write {os.fsdecode(path)}: {exc.strerror}"
            if exc.errno == errno.EACCES and _libc.prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) != 1:
                why += " (the process is not dumpable, e.g. it changed its uid without exec)"
            raise ProtectionError(f"{PREFIX}: {why}") from None

    def _record(self, state: int, message: str) -> None:
        data = message.encode("utf-8", "replace")[: _PAGE - 3]
        self._shared[0:3] = bytes([state]) + len(data).to_bytes(2, "big")
        self._shared[3 : 3 + len(data)] = data

    # -- in the parent ---------------------------------------------------------------------------------

    def mode(self) -> str | None:
        """How the last child was protected ('mount namespace', 'user and mount namespace'), or None."""
        return MODES.get(self._shared[0])

    def failure(self) -> str | None:
        """The message the last child recorded when it could not protect the paths, else None."""
        if self._shared[0] != _FAILED:
            return None
        size = int.from_bytes(self._shared[1:3], "big")
        return self._shared[3 : 3 + size].decode("utf-8", "replace")

    def error(self, exc: BaseException) -> ProtectionError:
        """The ProtectionError for a Popen that failed with `exc` (a SubprocessError from the preexec)."""
        return ProtectionError(self.failure() or f"{PREFIX}: the child failed before exec: {exc}")


def read_only_paths_preexec(paths: list[Path]) -> ReadOnlyPaths:
    """A Popen `preexec_fn` making `paths` (which must exist) read-only for the child and what it runs.

    Raises ProtectionError now for a path that does not exist or on a system without mount namespaces.
    """
    return ReadOnlyPaths(paths)


def popen_read_only(args: Sequence[str], read_only: list[Path], **kwargs: Any) -> subprocess.Popen[bytes]:
    """subprocess.Popen(args, **kwargs) with `read_only` read-only for the child; ProtectionError if not."""
    preexec = read_only_paths_preexec(read_only)
    try:
        return subprocess.Popen(args, preexec_fn=preexec, **kwargs)
    except subprocess.SubprocessError as exc:
        raise preexec.error(exc) from exc


def _hints() -> list[str]:
    """What on this system is known to refuse user namespaces."""
    hints = []
    if _read("/proc/sys/kernel/unprivileged_userns_clone") == "0":
        hints.append("kernel.unprivileged_userns_clone is 0")
    if _read("/proc/sys/user/max_user_namespaces") == "0":
        hints.append("user.max_user_namespaces is 0")
    if _read("/proc/sys/kernel/apparmor_restrict_unprivileged_userns") == "1":
        hints.append("AppArmor restricts them: kernel.apparmor_restrict_unprivileged_userns is 1")
    for line in (_read("/proc/self/status") or "").splitlines():
        if line.startswith("Seccomp:") and line.split()[-1] == "2":
            hints.append("a seccomp filter is active (a container runtime's default profile refuses unshare)")
    return hints


def protection_available(python: str | None = None) -> str | None:
    """None when the store can be made read-only for the agent here, else a sentence saying why not.

    Probes for real, the way `protected_popen` starts the agent: a child protects a temporary
    directory and tries to write into it.
    """
    if _libc is None:
        return f"read-only store protection needs Linux mount namespaces; this is {sys.platform}"
    try:
        probe_dir = tempfile.mkdtemp(prefix="agenttrace-protect-")
    except OSError as exc:
        return f"read-only store protection cannot be probed: no temporary directory ({exc.strerror})"
    try:
        interpreter = python or sys.executable
        child, _ = protected_popen(
            [interpreter, "-S", "-E", "-c", _PROBE, os.path.join(probe_dir, "probe")],
            [Path(probe_dir)],
            python=interpreter,
        )
        code = child.wait()
        if code == 0:
            return None
        return f"read-only store protection is not available here: the probe's write was not refused ({code})"
    except ProtectionError as exc:
        reason = str(exc).removeprefix(PREFIX + ": ")
        hints = _hints() if os.geteuid() != 0 or "CLONE_NEWUSER" in reason else []
        extra = f" ({'; '.join(hints)})" if hints else ""
        return f"read-only store protection is not available here: {reason}{extra}"
    except OSError as exc:
        return f"read-only store protection cannot be probed: {exc.strerror or exc}"
    finally:
        with contextlib.suppress(OSError):
            os.unlink(os.path.join(probe_dir, "probe"))
        with contextlib.suppress(OSError):
            os.rmdir(probe_dir)


_PROBE = (
    "import os, sys\n"
    "try:\n"
    "    os.close(os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT, 0o600))\n"
    "    sys.exit(3)\n"
    "except OSError as exc:\n"
    "    sys.exit(0 if exc.errno == 30 else 4)\n"
)
"""Exits 0 when its write is refused with EROFS."""

_TRAMPOLINE = (
    "import sys; sys.path.insert(0, sys.argv[1]); "
    "from agenttrace.supervise.protect import _trampoline; _trampoline(sys.argv[2:])"
)
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])


def protected_popen(
    command: Sequence[str], paths: list[Path], *, python: str | None = None, **kwargs: Any
) -> tuple[subprocess.Popen[bytes], str]:
    """Start `command` (as `subprocess.Popen(command, **kwargs)` would) with `paths` read-only for it
    and everything it runs; return the process and how it was protected. Raises ProtectionError
    (nothing runs then), FileNotFoundError or PermissionError when the command cannot be run.

    The namespace is set up by a fresh interpreter (`python -S -E`, which then execs the command),
    not in a `preexec_fn`: a user namespace refuses a multithreaded caller, and a child forked by a
    program with OpenTelemetry's batch processor has a thread before any preexec_fn runs (Python's
    at-fork handlers start one). A pipe tells the parent how it went, up to the exec.
    """
    ReadOnlyPaths(paths)  # a missing path is refused here, before anything starts
    read, write = os.pipe()
    argv = [python or sys.executable, "-S", "-E", "-c", _TRAMPOLINE, _PACKAGE_ROOT, str(write)]
    argv += [*(str(p) for p in paths), "--", *command]
    try:
        child = subprocess.Popen(argv, pass_fds=(write,), **kwargs)
    finally:
        os.close(write)
    with os.fdopen(read, "rb") as pipe:
        report = pipe.read().decode("utf-8", "replace").splitlines()
    status = dict(line.split(" ", 1) for line in report if " " in line)
    if "mode" not in status or "exec" in status or "error" in status:
        child.wait()
        if "exec" in status:
            number, _, message = status["exec"].partition(" ")
            kind = FileNotFoundError if int(number) == errno.ENOENT else PermissionError
            raise kind(int(number), message, command[0])
        raise ProtectionError(status.get("error") or f"{PREFIX}: the protected start failed ({report})")
    return child, status["mode"]


def _trampoline(args: list[str]) -> None:  # pragma: no cover - runs in the protected child
    """`python -S -E -c _TRAMPOLINE ROOT FD PATH... -- COMMAND...`: protect, report, exec."""
    fd = int(args[0])
    split = args.index("--")
    paths, command = [Path(p) for p in args[1:split]], args[split + 1 :]
    os.set_inheritable(fd, False)  # closed by a successful exec: the parent then reads EOF
    try:
        guard = ReadOnlyPaths(paths)
        guard()
    except ProtectionError as exc:
        os.write(fd, f"error {exc}\n".encode())
        os._exit(126)
    os.write(fd, f"mode {guard.mode()}\n".encode())
    try:
        os.execvp(command[0], command)
    except OSError as exc:
        os.write(fd, f"exec {exc.errno} {exc.strerror}\n".encode())
        os._exit(127 if exc.errno == errno.ENOENT else 126)
