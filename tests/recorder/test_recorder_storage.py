"""LocalStorage: atomic writes, range reads, listing, deletion, and paths that stay in the root."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from recorder.storage import (
    InvalidPath,
    LocalStorage,
    Storage,
    StorageError,
    StoredFile,
    copy_into,
)


@pytest.fixture
def storage(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "recordings")


def test_local_storage_is_a_storage(storage: LocalStorage) -> None:
    store: Storage = storage
    assert store.list_recordings() == []


def test_default_root_is_under_the_data_dir(tmp_path: Path) -> None:
    storage = LocalStorage.in_data_dir(tmp_path)
    assert storage.root == (tmp_path / "recordings").resolve() and storage.root.is_dir()


def test_write_and_read_ranges(storage: LocalStorage) -> None:
    data = bytes(range(256)) * 40
    assert storage.write_bytes("r1", "a.bin", data) == len(data)
    assert storage.read("r1", "a.bin") == data
    assert storage.read("r1", "a.bin", 100, 50) == data[100:150]
    assert storage.read("r1", "a.bin", len(data) - 3) == data[-3:]
    assert storage.read("r1", "a.bin", len(data) + 10, 5) == b""
    assert storage.size("r1", "a.bin") == len(data)
    with storage.open_read("r1", "a.bin") as f:
        f.seek(10)
        assert f.read(2) == data[10:12]
    with pytest.raises(ValueError):
        storage.read("r1", "a.bin", -1)


def test_pending_file_is_invisible_until_commit(storage: LocalStorage) -> None:
    pending = storage.open_write("r1", "seg-000000.webm")
    pending.path.write_bytes(b"half a segment")
    assert not storage.exists("r1", "seg-000000.webm")
    assert storage.list_files("r1") == []
    assert pending.commit() == 14
    assert storage.list_files("r1") == [StoredFile("seg-000000.webm", 14)]
    with pytest.raises(StorageError):
        pending.commit()


def test_overwrite_replaces_whole_file(storage: LocalStorage) -> None:
    storage.write_bytes("r1", "final.json", b"old contents, long")
    storage.write_bytes("r1", "final.json", b"new")
    assert storage.read("r1", "final.json") == b"new"


def test_abort_and_crash_leftovers_are_discarded(storage: LocalStorage) -> None:
    aborted = storage.open_write("r1", "x.mp4")
    aborted.path.write_bytes(b"x")
    aborted.abort()
    assert not aborted.path.exists()
    crashed = storage.open_write("r1", "hls/y.m4s")  # never committed: a kill -9
    crashed.path.write_bytes(b"y")
    storage.write_bytes("r1", "kept.bin", b"k")
    assert [f.name for f in storage.list_files("r1")] == ["kept.bin"]
    assert storage.discard_temporaries("r1") == 1
    assert not crashed.path.exists()
    assert storage.discard_temporaries("r1") == 0


def test_append_line_appends_durably(storage: LocalStorage) -> None:
    storage.append_line("r1", "manifest.jsonl", '{"index":0}')
    storage.append_line("r1", "manifest.jsonl", '{"index":1}')
    assert storage.read("r1", "manifest.jsonl") == b'{"index":0}\n{"index":1}\n'
    with pytest.raises(ValueError):
        storage.append_line("r1", "manifest.jsonl", "two\nlines")


@pytest.mark.parametrize(
    "recording_id", ["..", ".", "", "a/b", "../x", ".hidden", "a\x00", "x" * 200, "a."]
)
def test_bad_recording_ids_are_refused(storage: LocalStorage, recording_id: str) -> None:
    with pytest.raises(InvalidPath):
        storage.write_bytes(recording_id, "f", b"x")


@pytest.mark.parametrize(
    "name", ["..", "../escape", "a/../../b", "/etc/passwd", "", "a//b", ".tmp", "hls/", "a\\b"]
)
def test_bad_names_are_refused(storage: LocalStorage, name: str) -> None:
    with pytest.raises(InvalidPath):
        storage.write_bytes("r1", name, b"x")
    with pytest.raises(InvalidPath):
        storage.read("r1", name)


def test_symlink_out_of_the_root_is_refused(storage: LocalStorage, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (storage.root / "r1").mkdir()
    os.symlink(outside, storage.root / "r1" / "hls")
    with pytest.raises(InvalidPath):
        storage.write_bytes("r1", "hls/index.m3u8", b"x")
    assert list(outside.iterdir()) == []


def test_subfolders_listing_and_deletion(storage: LocalStorage, tmp_path: Path) -> None:
    storage.write_bytes("r1", "hls/index.m3u8", b"#EXTM3U\n")
    storage.write_bytes("r1", "replay.mp4", b"mp4")
    storage.write_bytes("r2", "replay.webm", b"webm")
    assert storage.list_recordings() == ["r1", "r2"]
    assert storage.list_files("r1") == [
        StoredFile("hls/index.m3u8", 8),
        StoredFile("replay.mp4", 3),
    ]
    storage.delete_file("r1", "replay.mp4")
    storage.delete_file("r1", "replay.mp4")  # already gone: fine
    assert [f.name for f in storage.list_files("r1")] == ["hls/index.m3u8"]
    storage.delete_recording("r1")
    assert storage.list_recordings() == ["r2"]
    assert storage.list_files("r1") == []
    with pytest.raises(StorageError):
        storage.size("r1", "replay.mp4")
    with pytest.raises(StorageError):
        storage.open_read("r1", "replay.mp4")


def test_copy_into_and_free_space(storage: LocalStorage, tmp_path: Path) -> None:
    source = tmp_path / "local.bin"
    source.write_bytes(b"z" * 3_000_000)
    assert copy_into(storage, "r1", "big.bin", source) == 3_000_000
    assert storage.read("r1", "big.bin", 2_999_999) == b"z"
    assert storage.free_bytes() > 0
    with pytest.raises(StorageError):
        copy_into(storage, "r1", "missing.bin", tmp_path / "nope")
    assert storage.discard_temporaries("r1") == 0
