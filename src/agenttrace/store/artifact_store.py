"""Content-addressed copies of evidence and deliverables: `<store>/artifacts/sha256/<aa>/<hash>`.

    stored = ArtifactStore(layout).put(Path("report.md"))
    stored.sha256, stored.size, stored.content_type, stored.stored

One pass over the file hashes it and writes the copy (to a temporary file, fsynced, then renamed
into place), so the copy always holds exactly the bytes that were hashed, even if the file
changes meanwhile. A copy already stored is not written again. Files over the size cap are
hashed but not copied (`stored` is False).

Copies are private: read-only for the user (0400) in folders only the user can enter (0700),
whatever the source file's mode: evidence can be a private file.
"""

from __future__ import annotations

import errno
import hashlib
import mimetypes
import os
import stat
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from ..errors import StoreError
from .layout import StoreLayout, make_private_dirs

CHUNK = 1 << 20
SNIFF = 8192


class NotAFileError(OSError):
    """The path is a FIFO, a socket or a device: reading it could block or never end."""


def open_regular(path: Path) -> BinaryIO:
    """Open a regular file for reading, without blocking on a FIFO (O_NONBLOCK) and without
    reading devices. Raises FileNotFoundError, IsADirectoryError, PermissionError, NotAFileError."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, "is a directory", str(path))
        if not stat.S_ISREG(mode):
            raise NotAFileError(errno.EINVAL, "not a regular file", str(path))
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


@dataclass(frozen=True)
class StoredFile:
    sha256: str
    size: int
    content_type: str
    stored: bool
    """False when the file was over the size cap: hashed, not copied."""


class ArtifactStore:
    def __init__(self, layout: StoreLayout, max_bytes: int) -> None:
        self.layout = layout
        self.max_bytes = max_bytes
        self._made: set[Path] = set()
        """Folders known to exist (a mkdir per file costs more than the copy of a small one)."""

    @property
    def root(self) -> Path:
        return self.layout.artifacts_dir / "sha256"

    def path_of(self, sha256: str) -> Path:
        return self.root / sha256[:2] / sha256

    def has(self, sha256: str) -> bool:
        return self.path_of(sha256).is_file()

    def put(self, source: Path, within: Path | None = None) -> StoredFile:
        """Hash `source` and keep a copy. Raises FileNotFoundError, IsADirectoryError,
        PermissionError or NotAFileError for the source, StoreError when the store cannot take
        the copy."""
        with open_regular(source) as f:
            if within is not None:
                _check_within(f.fileno(), source, within)
            size = os.fstat(f.fileno()).st_size
            if size > self.max_bytes:
                digest, head, size = _hash_only(f)
                return StoredFile(digest, size, content_type(source, head), stored=False)
            return self._copy(source, f)

    def put_bytes(self, data: bytes) -> str:
        """Keep `data` (whatever its size: the caller holds it already) and return its sha256.
        Written like a file's copy: temporary file, fsynced, renamed. Raises StoreError."""
        sha = hashlib.sha256(data).hexdigest()
        dest = self.path_of(sha)
        if dest.is_file():
            return sha
        tmp_dir = self.layout.artifacts_dir / "tmp"
        tmp = tmp_dir / f"{uuid.uuid4().hex}.part"
        try:
            self._mkdir(tmp_dir)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            with open(fd, "wb", buffering=0) as out:
                out.write(data)
                os.fchmod(out.fileno(), 0o400)
                os.fsync(out.fileno())
            self._mkdir(dest.parent)
            os.replace(tmp, dest)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise StoreError(f"cannot store an artifact in {tmp_dir}: {exc.strerror or exc}") from exc
        return sha

    def _copy(self, source: Path, f: object) -> StoredFile:
        tmp_dir = self.layout.artifacts_dir / "tmp"
        try:
            self._mkdir(tmp_dir)
        except OSError as exc:
            raise StoreError(f"cannot store artifacts in {tmp_dir}: {exc.strerror or exc}") from exc
        tmp = tmp_dir / f"{uuid.uuid4().hex}.part"
        digest = hashlib.sha256()
        head = b""
        size = 0
        buffer = bytearray(CHUNK)
        view = memoryview(buffer)
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            with open(fd, "wb", buffering=0) as out:
                while n := f.readinto(buffer):  # type: ignore[attr-defined]
                    chunk = view[:n]
                    digest.update(chunk)
                    out.write(chunk)
                    if len(head) < SNIFF:
                        head += bytes(chunk[: SNIFF - len(head)])
                    size += n
                    if size > self.max_bytes:  # it grew while being copied
                        break
                os.fchmod(out.fileno(), 0o400)  # read-only and private, with the data's metadata update
                os.fsync(out.fileno())
            sha = digest.hexdigest()
            if size > self.max_bytes:
                tmp.unlink(missing_ok=True)
                return StoredFile(sha, size, content_type(source, head), stored=False)
            dest = self.path_of(sha)
            if dest.is_file():
                tmp.unlink(missing_ok=True)
            else:
                self._mkdir(dest.parent)
                os.replace(tmp, dest)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise StoreError(f"cannot store a copy of {source}: {exc.strerror or exc}") from exc
        return StoredFile(sha, size, content_type(source, head), stored=True)

    def _mkdir(self, folder: Path) -> None:
        if folder not in self._made:
            make_private_dirs(self.layout.root, folder)
            self._made.add(folder)


class OutsideError(PermissionError):
    """The file opened is not inside the folder it had to be in."""


def _check_within(fd: int, source: Path, within: Path) -> None:
    """Raise OutsideError unless the file open as `fd` is inside `within`: checked on what was
    opened, not on the path, so a symlink swapped in after a path check cannot get around it."""
    try:
        opened = Path(os.readlink(f"/proc/self/fd/{fd}"))
    except OSError:
        return  # no /proc: the caller's path check is all there is
    root = Path(os.path.realpath(within))
    if opened != root and root not in opened.parents:
        raise OutsideError(errno.EACCES, f"{source} is not inside {root}", str(source))


def _hash_only(f: object) -> tuple[str, bytes, int]:
    digest = hashlib.sha256()
    head = b""
    size = 0
    while chunk := f.read(CHUNK):  # type: ignore[attr-defined]
        digest.update(chunk)
        if len(head) < SNIFF:
            head += chunk[: SNIFF - len(head)]
        size += len(chunk)
    return digest.hexdigest(), head, size


def sha256_file(path: Path) -> str:
    """The file's sha256. Raises OSError."""
    with open_regular(path) as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def content_type(path: Path, head: bytes) -> str:
    """By extension, else text/plain when the first bytes are UTF-8 text, else octet-stream."""
    guessed, _ = mimetypes.guess_type(path.name)
    if guessed:
        return guessed
    if b"\0" not in head:
        try:
            head.decode("utf-8")
            return "text/plain"
        except UnicodeDecodeError as exc:
            if exc.start >= len(head) - 3:  # a character cut at the sniff boundary
                return "text/plain"
    return "application/octet-stream"


__all__ = [
    "ArtifactStore",
    "NotAFileError",
    "OutsideError",
    "StoredFile",
    "content_type",
    "open_regular",
    "sha256_file",
]
