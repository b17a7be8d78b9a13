"""The store made read-only in the agent's mount namespace: real child processes, real mounts.

Every child here runs in a namespace of its own; the host's mount table is never changed.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from agenttrace.errors import ConfigError
from agenttrace.supervise.protect import (
    ProtectionError,
    popen_read_only,
    protected_popen,
    protection_available,
    read_only_paths_preexec,
)

NOBODY = 65534
PR_SET_DUMPABLE = 4

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mount namespaces are Linux's")


def privileged() -> bool:
    """CAP_SYS_ADMIN here: protection must work (root outside a restricted container)."""
    status = Path("/proc/self/status")
    for line in status.read_text().splitlines() if status.exists() else []:
        if line.startswith("CapEff:"):
            return bool(int(line.split()[1], 16) >> 21 & 1)
    return False


PRIVILEGED = privileged()
# Where it must work, nothing is skipped: a broken mechanism fails these tests instead of hiding.
UNAVAILABLE = None if PRIVILEGED or not sys.platform.startswith("linux") else protection_available()
needs_protection = pytest.mark.skipif(UNAVAILABLE is not None, reason=str(UNAVAILABLE))
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (mounts a tmpfs, switches to nobody)")

# Tries every kind of change in the directory argv[1], one write in argv[2], and reports each outcome
# ("ok" or the errno name) as JSON, with what the child sees of itself and of the protected files.
CHECK = r"""
import errno, json, os, sys
store, work = sys.argv[1], sys.argv[2]
p = lambda name: os.path.join(store, name)
def attempt(fn):
    try:
        fn()
        return "ok"
    except OSError as exc:
        return errno.errorcode[exc.errno]
def create():
    with open(p("new.txt"), "x") as f:
        f.write("forged")
def modify():
    with open(p("a.txt"), "a") as f:
        f.write("forged")
result = {
    "create": attempt(create),
    "modify": attempt(modify),
    "truncate": attempt(lambda: os.truncate(p("a.txt"), 0)),
    "rename": attempt(lambda: os.rename(p("a.txt"), p("b.txt"))),
    "delete": attempt(lambda: os.unlink(p("a.txt"))),
    "mkdir": attempt(lambda: os.mkdir(p("d"))),
    "rmdir": attempt(lambda: os.rmdir(p("sub"))),
    "chmod": attempt(lambda: os.chmod(p("a.txt"), 0o666)),
    "delete_below": attempt(lambda: os.unlink(os.path.join(p("sub"), "deep.txt"))),
    "work": attempt(lambda: open(os.path.join(work, "out.txt"), "w").write("agent output")),
    "read": open(p("a.txt")).read(),
    "uid": os.getuid(),
    "owner": os.stat(p("a.txt")).st_uid,
}
print(json.dumps(result))
"""
CHANGES = ("create", "modify", "truncate", "rename", "delete", "mkdir", "rmdir", "chmod", "delete_below")


def make_tree(base: Path, owner: int | None = None) -> tuple[Path, Path]:
    """base/store (a.txt, sub/deep.txt) and base/work, owned by `owner` when given."""
    store, work = base / "store", base / "work"
    (store / "sub").mkdir(parents=True)
    work.mkdir()
    (store / "a.txt").write_text("original")
    (store / "sub" / "deep.txt").write_text("deep")
    if owner is not None:
        for path in (store, store / "sub", store / "a.txt", store / "sub" / "deep.txt", work):
            os.chown(path, owner, owner)
    return store, work


def snapshot(store: Path) -> dict[str, str]:
    return {str(p.relative_to(store)): p.read_text() for p in sorted(store.rglob("*")) if p.is_file()}


def mountinfo() -> str:
    return Path("/proc/self/mountinfo").read_text()


def assert_all_refused(result: dict[str, object]) -> None:
    assert {op: result[op] for op in CHANGES} == dict.fromkeys(CHANGES, "EROFS")
    assert result["read"] == "original"
    assert result["work"] == "ok"


def as_nobody(then: Callable[[], None] | None) -> Callable[[], None]:
    """A preexec that becomes uid/gid 65534 and then runs `then` (the protection) as that user."""

    def preexec() -> None:
        os.setgroups([])
        os.setgid(NOBODY)
        os.setuid(NOBODY)
        # A process a user starts is dumpable; one that changed its uid without exec is not, and its
        # /proc/self files (uid_map) then belong to root. Be what `agenttrace run` by that user is.
        ctypes.CDLL(None).prctl(PR_SET_DUMPABLE, 1, 0, 0, 0)
        if then is not None:
            then()

    return preexec


def available_as_nobody() -> str | None:
    """protection_available() evaluated by a process running as uid 65534."""
    python = python_for_nobody()
    if python is None:
        return "no Python interpreter here can be run by uid 65534"
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            as_nobody(None)()
            os.write(write, json.dumps(protection_available(python)).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as f:
        answer = f.read()
    os.waitpid(pid, 0)
    return json.loads(answer)


def python_for_nobody() -> str | None:
    """An interpreter uid 65534 can run (this venv's may live under root's 0700 home)."""
    for candidate in (sys.executable, "/usr/bin/python3", shutil.which("python3")):
        if not candidate:
            continue
        try:
            if subprocess.run([candidate, "-c", ""], user=NOBODY, cwd="/", check=False).returncode == 0:
                return candidate
        except OSError:
            continue
    return None


@pytest.fixture
def shared_tmp() -> Iterator[Path]:
    """A folder under /tmp that uid 65534 can reach (pytest's tmp_path is private to root)."""
    base = Path(tempfile.mkdtemp(prefix="agenttrace-protect-test-"))
    base.chmod(0o755)
    yield base
    shutil.rmtree(base, ignore_errors=True)


def test_protection_available_here() -> None:
    reason = protection_available()
    if not PRIVILEGED and reason is not None:
        pytest.skip(f"no CAP_SYS_ADMIN here, and: {reason}")
    assert reason is None


@needs_protection
def test_child_cannot_create_modify_rename_or_delete_in_the_protected_directory(tmp_path: Path) -> None:
    store, work = make_tree(tmp_path)
    preexec = read_only_paths_preexec([store])
    out = subprocess.run(
        [sys.executable, "-c", CHECK, str(store), str(work)],
        cwd=work,
        preexec_fn=preexec,
        capture_output=True,
        text=True,
        check=True,
    )
    assert_all_refused(json.loads(out.stdout))
    assert snapshot(store) == {"a.txt": "original", "sub/deep.txt": "deep"}
    assert (work / "out.txt").read_text() == "agent output"
    assert preexec.mode() == ("mount namespace" if os.geteuid() == 0 else "user and mount namespace")


@needs_protection
def test_a_child_started_inside_the_protected_directory_is_protected_too(tmp_path: Path) -> None:
    """Popen's cwd is entered before the preexec; relative paths must still meet the read-only mount."""
    store, _ = make_tree(tmp_path)
    script = "open('forged.txt', 'w')"
    for cwd in (store, store / "sub"):
        out = subprocess.run(
            [sys.executable, "-c", script],
            cwd=cwd,
            preexec_fn=read_only_paths_preexec([store]),
            capture_output=True,
            text=True,
        )
        assert out.returncode == 1
        assert out.stderr.strip().splitlines()[-1].startswith("OSError: [Errno 30] Read-only file system")
    assert snapshot(store) == {"a.txt": "original", "sub/deep.txt": "deep"}


def test_the_root_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ProtectionError, match="is the root directory"):
        read_only_paths_preexec([tmp_path, Path("/")])


@needs_protection
def test_parent_keeps_writing_into_the_store_while_the_child_runs_and_after(tmp_path: Path) -> None:
    store, work = make_tree(tmp_path)
    script = (
        "import sys, os\n"
        "sys.stdin.readline()\n"  # the parent has written its file
        "print(open(sys.argv[1] + '/from_parent.txt').read())\n"
        "try:\n"
        "    open(sys.argv[1] + '/from_parent.txt', 'a').write('forged')\n"
        "except OSError as exc:\n"
        "    print(exc.strerror)\n"
    )
    child = popen_read_only(
        [sys.executable, "-c", script, str(store)],
        [store],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=work,
        env={**os.environ, "AGENT": "1"},
        process_group=0,  # as the supervisor starts it
    )
    (store / "from_parent.txt").write_text("written by the supervisor")
    (store / "a.txt").write_text("updated by the supervisor")
    out, _ = child.communicate("go\n", timeout=30)
    assert child.returncode == 0
    assert out.splitlines() == ["written by the supervisor", "Read-only file system"]
    with (store / "from_parent.txt").open("a") as f:
        f.write(", and after")
    assert (store / "from_parent.txt").read_text() == "written by the supervisor, and after"


@needs_protection
def test_host_mount_table_is_unchanged(tmp_path: Path) -> None:
    store, _ = make_tree(tmp_path)
    before = mountinfo()
    child = subprocess.Popen(
        [sys.executable, "-c", "import sys; print(open('/proc/self/mountinfo').read()); sys.stdin.read()"],
        preexec_fn=read_only_paths_preexec([store]),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    seen_by_child = []
    for line in child.stdout:
        if not line.strip():
            break
        seen_by_child.append(line)
    during = mountinfo()
    child.communicate("", timeout=30)
    assert during == before
    assert mountinfo() == before
    mine = [line.split() for line in seen_by_child if line.split()[4] == str(store)]
    assert mine, "the child sees the store as a mount point of its own"
    assert "ro" in mine[-1][5].split(","), mine[-1]
    assert all(line.split()[4] != str(store) for line in before.splitlines())


@needs_protection
@needs_root
def test_nothing_propagates_back_even_from_a_shared_mount_tree(tmp_path: Path) -> None:
    """In a throwaway namespace whose mounts are shared (systemd makes / shared), the child's stay its own."""
    store, _ = make_tree(tmp_path)
    helper = (
        "import ctypes, json, subprocess, sys\n"
        "from pathlib import Path\n"
        "from agenttrace.supervise.protect import read_only_paths_preexec\n"
        "MS_REC, MS_SHARED = 0x4000, 0x100000\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "assert libc.mount(None, b'/', None, MS_REC | MS_SHARED, None) == 0, ctypes.get_errno()\n"
        "mounts = lambda: Path('/proc/self/mountinfo').read_text()\n"
        "before = mounts()\n"
        "wait = 'import sys; print(1, flush=True); sys.stdin.read()'\n"
        "child = subprocess.Popen([sys.executable, '-c', wait],\n"
        "    preexec_fn=read_only_paths_preexec([Path(sys.argv[1])]), stdin=subprocess.PIPE,\n"
        "    stdout=subprocess.PIPE)\n"
        "child.stdout.readline()\n"
        "during = mounts()\n"
        "child.communicate(b'')\n"
        "print(json.dumps({'shared': 'shared:' in before, 'same': during == before == mounts()}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", helper, str(store)],
        preexec_fn=read_only_paths_preexec([]),
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(out.stdout) == {"shared": True, "same": True}


@needs_protection
@needs_root
def test_mount_points_below_a_protected_path_are_read_only_too(tmp_path: Path) -> None:
    """A tmpfs mounted inside the store, in a throwaway namespace, is protected like the rest."""
    store, work = make_tree(tmp_path)
    (store / "mnt").mkdir()
    helper = (
        "import ctypes, json, subprocess, sys\n"
        "from pathlib import Path\n"
        "from agenttrace.supervise.protect import read_only_paths_preexec\n"
        "store, work = Path(sys.argv[1]), sys.argv[2]\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "assert libc.mount(b'tmpfs', bytes(store / 'mnt'), b'tmpfs', 0, None) == 0, ctypes.get_errno()\n"
        "(store / 'mnt' / 'x.txt').write_text('on tmpfs')\n"
        "probe = 'import sys; open(sys.argv[1], \"w\")'\n"
        "out = subprocess.run([sys.executable, '-c', probe, str(store / 'mnt' / 'x.txt')],\n"
        "    preexec_fn=read_only_paths_preexec([store]), capture_output=True, text=True)\n"
        "(store / 'mnt' / 'y.txt').write_text('helper still writes')\n"
        "print(json.dumps([out.returncode, out.stderr.strip().splitlines()[-1]]))\n"
    )
    # read_only_paths_preexec([]) only gives the helper a private mount namespace: its tmpfs stays there.
    out = subprocess.run(
        [sys.executable, "-c", helper, str(store), str(work)],
        preexec_fn=read_only_paths_preexec([]),
        capture_output=True,
        text=True,
        check=True,
    )
    code, last = json.loads(out.stdout)
    assert code == 1
    assert last.endswith("Read-only file system: '" + str(store / "mnt" / "x.txt") + "'"), last
    assert not (store / "mnt" / "x.txt").exists(), "the tmpfs never reached the host"


@needs_root
def test_non_root_agent_uses_a_user_namespace_or_is_told_why_not(shared_tmp: Path) -> None:
    store, work = make_tree(shared_tmp, owner=NOBODY)
    reason = available_as_nobody()
    python = python_for_nobody()
    assert python is not None, "no Python interpreter here can be run by uid 65534"
    if reason is not None:
        print(f"path taken: unprivileged user namespaces refused here: {reason}")
        assert "user namespace" in reason or "CLONE_NEWUSER" in reason, reason
        with pytest.raises(ProtectionError, match="CLONE_NEWUSER"):
            protected_popen(["/bin/true"], [store], python=python, preexec_fn=as_nobody(None))
        return
    print("path taken: user namespace (uid 65534 mapped to itself)")
    child, mode = protected_popen(
        [python, "-c", CHECK, str(store), str(work)],
        [store],
        python=python,
        cwd=work,
        preexec_fn=as_nobody(None),
        stdout=subprocess.PIPE,
    )
    stdout, _ = child.communicate()
    assert child.returncode == 0
    result = json.loads(stdout)
    assert mode == "user and mount namespace"
    assert_all_refused(result)
    assert (result["uid"], result["owner"]) == (NOBODY, NOBODY), "same uid, files keep their owner"
    assert snapshot(store) == {"a.txt": "original", "sub/deep.txt": "deep"}
    assert (work / "out.txt").read_text() == "agent output"
    (store / "a.txt").write_text("the supervisor still writes")


UNDO = r"""
import ctypes, errno, json, os, sys
libc = ctypes.CDLL(None, use_errno=True)
store, host_pid = sys.argv[1].encode(), sys.argv[2]
MS_BIND, MS_REMOUNT, MNT_DETACH = 0x1000, 0x20, 2
def call(r):
    return "ok" if r == 0 else errno.errorcode[ctypes.get_errno()]
def attempt(path):
    try:
        open(path, "w").write("forged")
        return "ok"
    except OSError as exc:
        return errno.errorcode[exc.errno]
result = {"umount": call(libc.umount2(store, MNT_DETACH)),
          "remount_rw": call(libc.mount(None, store, None, MS_BIND | MS_REMOUNT, None))}
# Through a process of the same user on the host: /proc/PID/root leads into the host's mounts.
result["via_proc_root"] = attempt(f"/proc/{host_pid}/root{sys.argv[1]}/forged.txt")
# A user namespace of its own gives the agent CAP_SYS_ADMIN there, over a copy of its mounts.
result["unshare"] = call(libc.unshare(0x10000000 | 0x00020000))
uid, gid = os.getuid(), os.getgid()
for name, data in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"), ("gid_map", f"{gid} {gid} 1")):
    with open(f"/proc/self/{name}", "w") as f:
        f.write(data)
result["nested_remount_rw"] = call(libc.mount(None, store, None, MS_BIND | MS_REMOUNT, None))
result["nested_umount"] = call(libc.umount2(store, MNT_DETACH))
result["write"] = attempt(os.path.join(sys.argv[1], "forged.txt"))
print(json.dumps(result))
"""


@needs_root
def test_unprivileged_agent_cannot_undo_the_protection(shared_tmp: Path) -> None:
    store, work = make_tree(shared_tmp, owner=NOBODY)
    if (reason := available_as_nobody()) is not None:
        pytest.skip(f"no user namespaces for uid 65534 here: {reason}")
    python = python_for_nobody()
    assert python is not None
    host_process = subprocess.Popen(["sleep", "60"], user=NOBODY, group=NOBODY, extra_groups=[])
    try:
        child, _ = protected_popen(
            [python, "-c", UNDO, str(store), str(host_process.pid)],
            [store],
            python=python,
            cwd=work,
            preexec_fn=as_nobody(None),
            stdout=subprocess.PIPE,
        )
        stdout, _ = child.communicate()
        assert child.returncode == 0
    finally:
        host_process.kill()
        host_process.wait()
    assert json.loads(stdout) == {
        "umount": "EPERM",
        "remount_rw": "EPERM",
        "via_proc_root": "EACCES",  # ptrace access across user namespaces is refused
        "unshare": "ok",
        "nested_remount_rw": "EPERM",  # the read-only flag is locked in a less privileged namespace
        "nested_umount": "EINVAL",  # and so is the mount itself
        "write": "EROFS",
    }
    assert snapshot(store) == {"a.txt": "original", "sub/deep.txt": "deep"}


@needs_protection
@needs_root
def test_unprivileged_protection_keeps_the_mount_flags_it_may_not_clear(shared_tmp: Path) -> None:
    """A store on a nosuid,nodev,noexec mount (a tmpfs, in a throwaway namespace) works for a user too.

    In a user namespace the kernel refuses a remount that would drop those flags; they must be repeated.
    """
    if (reason := available_as_nobody()) is not None:
        pytest.skip(f"no user namespaces for uid 65534 here: {reason}")
    store = shared_tmp / "store"
    store.mkdir()
    helper = (
        "import ctypes, json, os, subprocess, sys\n"
        "from agenttrace.supervise.protect import read_only_paths_preexec\n"
        "store = sys.argv[1]\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "MS_NOSUID, MS_NODEV, MS_NOEXEC = 0x2, 0x4, 0x8\n"
        "options = b'mode=0755,uid=65534,gid=65534'\n"
        "flags = MS_NOSUID | MS_NODEV | MS_NOEXEC\n"
        "assert libc.mount(b'tmpfs', store.encode(), b'tmpfs', flags, options) == 0, ctypes.get_errno()\n"
        "protect = read_only_paths_preexec([store])\n"
        "def as_nobody():\n"
        "    os.setgroups([]); os.setgid(65534); os.setuid(65534)\n"
        "    libc.prctl(4, 1, 0, 0, 0)\n"
        "    protect()\n"
        "out = subprocess.run(['/bin/sh', '-c', 'echo forged > f'], cwd=store, preexec_fn=as_nobody,\n"
        "    capture_output=True, text=True, env={'LC_ALL': 'C', 'PATH': '/usr/bin:/bin'})\n"
        "print(json.dumps([protect.mode(), out.returncode, out.stderr.strip(), os.listdir(store)]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", helper, str(store)],
        preexec_fn=read_only_paths_preexec([]),
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    mode, code, stderr, listing = json.loads(out.stdout)
    assert (mode, listing) == ("user and mount namespace", [])
    assert code != 0 and stderr.endswith("Read-only file system"), stderr


@needs_root
def test_a_failure_in_the_child_reaches_the_parent_as_a_clear_error(shared_tmp: Path) -> None:
    """Here: the child became nobody without exec and without dumpable, so it cannot write uid_map."""
    store, _ = make_tree(shared_tmp, owner=NOBODY)
    preexec = read_only_paths_preexec([store])

    def nobody_not_dumpable() -> None:
        os.setgroups([])
        os.setgid(NOBODY)
        os.setuid(NOBODY)
        preexec()

    with pytest.raises(subprocess.SubprocessError) as raised:
        subprocess.run(["/bin/true"], preexec_fn=nobody_not_dumpable, check=True)
    error = preexec.error(raised.value)
    assert isinstance(error, ConfigError)
    assert str(error).startswith("cannot make the store read-only for the agent: ")
    # Where user namespaces work, the uid map cannot be written (not dumpable); a pytest process whose
    # fork handlers start threads gets no further than unshare (EINVAL: see the test below).
    assert ("/proc/self/" in str(error) and "not dumpable" in str(error)) or "CLONE_NEWUSER" in str(error), (
        error
    )
    assert preexec.mode() is None
    # The same through popen_read_only, with Popen's own user= switch (also a uid change without exec).
    with pytest.raises(ProtectionError, match=r"^cannot make the store read-only for the agent: "):
        popen_read_only(["/bin/true"], [store], user=NOBODY, group=NOBODY, extra_groups=[])


def test_a_missing_path_is_refused_in_the_parent(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-store"
    with pytest.raises(ProtectionError) as raised:
        read_only_paths_preexec([missing])
    assert isinstance(raised.value, ConfigError)
    assert str(raised.value) == (
        f"cannot make the store read-only for the agent: {missing}: No such file or directory"
    )


@needs_protection
def test_a_path_gone_before_the_start_is_a_clear_error_in_the_parent(tmp_path: Path) -> None:
    store, _ = make_tree(tmp_path)
    doomed = store / "sub"
    preexec = read_only_paths_preexec([store, doomed])
    shutil.rmtree(doomed)
    with pytest.raises(subprocess.SubprocessError) as raised:
        subprocess.run(["/bin/true"], preexec_fn=preexec, check=True)
    assert str(preexec.error(raised.value)) == (
        f"cannot make the store read-only for the agent: bind-mount {doomed} onto itself: "
        "No such file or directory"
    )


@needs_root
def test_a_parent_whose_fork_handlers_start_threads_still_protects_a_user(shared_tmp: Path) -> None:
    """The supervisor runs OpenTelemetry's batch processor, whose at-fork handler starts a thread in
    every forked child before any preexec_fn: a user namespace refuses that multithreaded child
    (EINVAL). protected_popen sets the namespace up in a fresh interpreter instead."""
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    if (reason := available_as_nobody()) is not None:
        pytest.skip(f"no user namespaces for uid 65534 here: {reason}")
    processor = BatchSpanProcessor(InMemorySpanExporter())  # registers its at-fork handler
    store, _ = make_tree(shared_tmp, owner=NOBODY)
    python = python_for_nobody()
    assert python is not None
    try:
        preexec = read_only_paths_preexec([store])
        with pytest.raises(subprocess.SubprocessError):
            subprocess.run(["/bin/true"], preexec_fn=as_nobody(preexec), check=True)
        assert "Invalid argument" in (preexec.failure() or ""), preexec.failure()
        child, mode = protected_popen(
            ["/bin/sh", "-c", "echo forged > a.txt"], [store], python=python, cwd=store,
            preexec_fn=as_nobody(None), stderr=subprocess.PIPE,
        )  # fmt: skip
        _, err = child.communicate()
        assert mode == "user and mount namespace"
        assert child.returncode != 0 and b"Read-only file system" in err
        assert snapshot(store)["a.txt"] == "original"
    finally:
        processor.shutdown()
