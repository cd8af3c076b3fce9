"""Where recordings live: a small interface object storage can implement, and a local disk one.

A recording is a flat namespace of files (``recording_id/name``, where a name may hold ``/`` for
subfolders such as ``hls/``). Every complete file appears atomically: it is written to a hidden
temporary name, fsync'd and renamed, so after ``kill -9`` a reader sees either the whole file or
nothing but a temporary that :meth:`Storage.discard_temporaries` removes.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

# One path component: no separators, no "." / "..", nothing hidden (the leading dot marks
# temporaries), so no name can leave the root or collide with a file in progress.
_COMPONENT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")
_TEMP_MARK = ".tmp-"
_COPY_CHUNK = 1 << 20


class StorageError(Exception):
    """A storage operation failed (I/O error, missing file)."""


class InvalidPath(StorageError, ValueError):
    """A recording id or file name that could leave the root or is not a plain name."""


@dataclass(frozen=True, slots=True)
class StoredFile:
    """One complete file of a recording."""

    name: str
    size: int


def check_recording_id(recording_id: str) -> str:
    """Return ``recording_id`` if it is one safe path component, else raise InvalidPath."""
    if not _COMPONENT.fullmatch(recording_id) or recording_id.endswith("."):
        raise InvalidPath(f"bad recording id {recording_id!r}")
    return recording_id


def check_name(name: str) -> str:
    """Return ``name`` if every ``/``-separated part is a safe component, else raise InvalidPath."""
    parts = name.split("/")
    if not parts or any(not _COMPONENT.fullmatch(p) for p in parts) or ".." in parts:
        raise InvalidPath(f"bad file name {name!r}")
    return name


class PendingFile(Protocol):
    """A file being written: the caller writes ``path`` (a local file), then commits or aborts."""

    @property
    def path(self) -> Path: ...

    def commit(self) -> int:
        """Make the file durable and visible under its name; return its size in bytes."""
        ...

    def abort(self) -> None:
        """Forget the file; its name stays as it was."""
        ...


class Storage(Protocol):
    """What the recorder needs from a store. Object storage implements the same methods."""

    def open_write(self, recording_id: str, name: str) -> PendingFile:
        """Start writing a file that becomes visible only on ``commit()``."""
        ...

    def write_bytes(self, recording_id: str, name: str, data: bytes) -> int:
        """Write a whole file atomically; return its size."""
        ...

    def append_line(self, recording_id: str, name: str, line: str) -> None:
        """Append one line (a newline is added) and make it durable before returning."""
        ...

    def open_read(self, recording_id: str, name: str) -> BinaryIO:
        """A seekable binary reader of a complete file."""
        ...

    def read(
        self, recording_id: str, name: str, start: int = 0, length: int | None = None
    ) -> bytes:
        """Bytes ``start`` .. ``start + length`` (to the end when length is None)."""
        ...

    def size(self, recording_id: str, name: str) -> int: ...

    def exists(self, recording_id: str, name: str) -> bool: ...

    def list_files(self, recording_id: str) -> list[StoredFile]:
        """The complete files of a recording, sorted by name (temporaries excluded)."""
        ...

    def list_recordings(self) -> list[str]: ...

    def discard_temporaries(self, recording_id: str) -> int:
        """Delete files left in progress (a crash); return how many."""
        ...

    def delete_file(self, recording_id: str, name: str) -> None: ...

    def delete_recording(self, recording_id: str) -> None: ...

    def free_bytes(self) -> int:
        """Bytes still free for new recordings."""
        ...


def _fsync_dir(path: Path) -> None:
    # POSIX: a rename is durable only once its directory is fsync'd.
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass(slots=True)
class _LocalPendingFile:
    temp: Path
    final: Path
    done: bool = False

    @property
    def path(self) -> Path:
        return self.temp

    def commit(self) -> int:
        if self.done:
            raise StorageError(f"{self.final} already committed or aborted")
        self.done = True
        try:
            with open(self.temp, "rb+") as f:
                os.fsync(f.fileno())
                size = os.fstat(f.fileno()).st_size
            os.replace(self.temp, self.final)
            _fsync_dir(self.final.parent)
        except OSError as exc:
            with contextlib.suppress(OSError):
                self.temp.unlink()
            raise StorageError(f"cannot commit {self.final}: {exc}") from exc
        return size

    def abort(self) -> None:
        self.done = True
        with contextlib.suppress(OSError):
            self.temp.unlink()


class LocalStorage:
    """Recordings as directories under ``root`` (by default ``data_dir / "recordings"``)."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    @classmethod
    def in_data_dir(cls, data_dir: Path) -> LocalStorage:
        return cls(data_dir / "recordings")

    def _dir(self, recording_id: str) -> Path:
        return self.root / check_recording_id(recording_id)

    def _path(self, recording_id: str, name: str) -> Path:
        path = self._dir(recording_id) / check_name(name)
        # Belt and braces against symlinks planted inside the root.
        if not path.resolve().is_relative_to(self.root):
            raise InvalidPath(f"{recording_id}/{name} leaves the storage root")
        return path

    def open_write(self, recording_id: str, name: str) -> PendingFile:
        final = self._path(recording_id, name)
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot create {final.parent}: {exc}") from exc
        temp = final.with_name(f".{final.name}{_TEMP_MARK}{secrets.token_hex(4)}")
        return _LocalPendingFile(temp=temp, final=final)

    def write_bytes(self, recording_id: str, name: str, data: bytes) -> int:
        pending = self.open_write(recording_id, name)
        try:
            pending.path.write_bytes(data)
        except OSError as exc:
            pending.abort()
            raise StorageError(f"cannot write {recording_id}/{name}: {exc}") from exc
        return pending.commit()

    def append_line(self, recording_id: str, name: str, line: str) -> None:
        if "\n" in line:
            raise ValueError("a line must not contain a newline")
        path = self._path(recording_id, name)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            created = not path.exists()
            with open(path, "ab") as f:
                f.write(line.encode() + b"\n")
                f.flush()
                os.fsync(f.fileno())
            if created:
                _fsync_dir(path.parent)
        except OSError as exc:
            raise StorageError(f"cannot append to {recording_id}/{name}: {exc}") from exc

    def open_read(self, recording_id: str, name: str) -> BinaryIO:
        try:
            return open(self._path(recording_id, name), "rb")
        except OSError as exc:
            raise StorageError(f"cannot open {recording_id}/{name}: {exc}") from exc

    def read(
        self, recording_id: str, name: str, start: int = 0, length: int | None = None
    ) -> bytes:
        if start < 0 or (length is not None and length < 0):
            raise ValueError("start and length must not be negative")
        with self.open_read(recording_id, name) as f:
            f.seek(start)
            return f.read() if length is None else f.read(length)

    def size(self, recording_id: str, name: str) -> int:
        try:
            return self._path(recording_id, name).stat().st_size
        except OSError as exc:
            raise StorageError(f"no file {recording_id}/{name}") from exc

    def exists(self, recording_id: str, name: str) -> bool:
        return self._path(recording_id, name).is_file()

    def _walk(self, recording_id: str) -> Iterator[tuple[str, Path]]:
        base = self._dir(recording_id)
        if not base.is_dir():
            return
        for dirpath, _dirs, files in os.walk(base):
            for file in files:
                full = Path(dirpath) / file
                yield full.relative_to(base).as_posix(), full

    def list_files(self, recording_id: str) -> list[StoredFile]:
        out = []
        for name, full in self._walk(recording_id):
            if _TEMP_MARK in name:
                continue
            with contextlib.suppress(OSError):
                out.append(StoredFile(name=name, size=full.stat().st_size))
        return sorted(out, key=lambda f: f.name)

    def list_recordings(self) -> list[str]:
        return sorted(
            p.name for p in self.root.iterdir() if p.is_dir() and _COMPONENT.fullmatch(p.name)
        )

    def discard_temporaries(self, recording_id: str) -> int:
        count = 0
        for name, full in list(self._walk(recording_id)):
            if _TEMP_MARK in name:
                with contextlib.suppress(OSError):
                    full.unlink()
                    count += 1
        return count

    def delete_file(self, recording_id: str, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._path(recording_id, name).unlink()

    def delete_recording(self, recording_id: str) -> None:
        shutil.rmtree(self._dir(recording_id), ignore_errors=True)

    def free_bytes(self) -> int:
        return shutil.disk_usage(self.root).free


def copy_into(storage: Storage, recording_id: str, name: str, source: Path) -> int:
    """Store a local file under ``name`` atomically (e.g. muxer output written elsewhere)."""
    pending = storage.open_write(recording_id, name)
    try:
        with open(source, "rb") as src, open(pending.path, "wb") as dst:
            shutil.copyfileobj(src, dst, _COPY_CHUNK)
    except OSError as exc:
        pending.abort()
        raise StorageError(f"cannot store {recording_id}/{name}: {exc}") from exc
    return pending.commit()
