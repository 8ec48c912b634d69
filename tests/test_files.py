"""rag.files: a file is replaced whole or not at all, and nothing is left beside it."""

from __future__ import annotations

import os
import stat

import pytest

import rag.files
from rag.files import atomic_write, create_new, replace_folder


def listing(folder):
    return sorted(p.name for p in folder.iterdir())


@pytest.mark.parametrize("content, expected", [
    (b"new \x00 bytes", b"new \x00 bytes"),
    ("新しい text\n", "新しい text\n".encode()),
    (lambda tmp: tmp.write_bytes(b"written by a library"), b"written by a library"),
])
def test_the_new_content_replaces_the_old_whole(tmp_path, content, expected):
    path = tmp_path / "f.json"
    path.write_bytes(b"old")
    assert atomic_write(path, content) == path
    assert path.read_bytes() == expected and listing(tmp_path) == ["f.json"]


def test_the_file_keeps_its_old_content_until_the_new_one_is_complete(tmp_path):
    path = tmp_path / "f.txt"
    path.write_text("old")
    seen = []

    def write(tmp):
        with open(tmp, "w") as f:
            f.write("new, first half")
            f.flush()
            seen.append(path.read_text())  # a reader in the middle of the write
            f.write(", second half")

    atomic_write(path, write)
    assert seen == ["old"] and path.read_text() == "new, first half, second half"


@pytest.mark.parametrize("existed", [True, False])
def test_a_write_that_raises_leaves_the_old_file_and_no_temporary_file(tmp_path, existed):
    path = tmp_path / "export.apkg"
    if existed:
        path.write_bytes(b"earlier export")

    def write(tmp):
        tmp.write_bytes(b"half of the ne")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        atomic_write(path, write)
    assert listing(tmp_path) == (["export.apkg"] if existed else [])
    if existed:
        assert path.read_bytes() == b"earlier export"


def test_an_interrupt_during_the_write_removes_the_temporary_file(tmp_path):
    path = tmp_path / "CURRENT"
    path.write_text("build-1")

    def write(tmp):
        tmp.write_text("bu")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(path, write)
    assert path.read_text() == "build-1" and listing(tmp_path) == ["CURRENT"]


def test_a_failed_rename_leaves_the_old_file_and_no_temporary_file(tmp_path, monkeypatch):
    path = tmp_path / "facts.json"
    path.write_text("old facts")

    def refuse(src, dst):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(rag.files.os, "replace", refuse)
    with pytest.raises(PermissionError):
        atomic_write(path, "new facts")
    assert path.read_text() == "old facts" and listing(tmp_path) == ["facts.json"]


def test_the_new_file_is_flushed_to_disk_before_the_rename(tmp_path, monkeypatch):
    path = tmp_path / "CURRENT"
    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(rag.files.os, "fsync", lambda fd: events.append("fsync") or real_fsync(fd))
    monkeypatch.setattr(rag.files.os, "replace", lambda a, b: events.append("replace") or real_replace(a, b))
    atomic_write(path, "build-2")
    assert events[:2] == ["fsync", "replace"] and path.read_text() == "build-2"


def test_a_new_file_gets_the_permissions_open_gives_not_a_private_temporary_files(tmp_path):
    path = tmp_path / "deck.csv"
    old = os.umask(0o022)
    try:
        atomic_write(path, "a,b\n")
        atomic_write(tmp_path / "other.csv", lambda tmp: tmp.write_text("c\n"))
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "other.csv").stat().st_mode) == 0o644


def test_create_new_never_replaces_a_file(tmp_path):
    path = tmp_path / "notes.md"
    path.write_text("someone's upload")
    with pytest.raises(FileExistsError):
        create_new(path, b"another upload")
    assert path.read_text() == "someone's upload" and listing(tmp_path) == ["notes.md"]
    assert create_new(tmp_path / "notes-2.md", b"another upload").read_bytes() == b"another upload"


def test_a_failed_create_new_leaves_neither_the_name_nor_a_temporary_file(tmp_path):
    def write(tmp):
        tmp.write_bytes(b"par")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError):
        create_new(tmp_path / "notes.md", write)
    assert listing(tmp_path) == []


def test_replace_folder_puts_the_new_folder_in_place(tmp_path):
    folder = tmp_path / "cache" / "index-1"
    folder.mkdir(parents=True)
    (folder / "stale.npy").write_bytes(b"old")

    def write(tmp):
        tmp.mkdir()
        (tmp / "manifest.json").write_text("{}")

    assert replace_folder(folder, write) == folder
    assert listing(folder) == ["manifest.json"] and listing(tmp_path / "cache") == ["index-1"]


def test_a_failed_replace_folder_keeps_the_old_folder_and_removes_the_partial_one(tmp_path):
    folder = tmp_path / "index-1"
    folder.mkdir()
    (folder / "manifest.json").write_text("old")

    def write(tmp):
        tmp.mkdir()
        (tmp / "vectors.npy").write_bytes(b"half")
        raise MemoryError

    with pytest.raises(MemoryError):
        replace_folder(folder, write)
    assert listing(tmp_path) == ["index-1"] and (folder / "manifest.json").read_text() == "old"
