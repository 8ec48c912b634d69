"""Writing files so that nothing on disk is ever half written: the one home of that rule.

:func:`atomic_write` replaces a file (the index's ``CURRENT``, an export, a derived facts
file, a vector cache, the tuned values), :func:`create_new` writes one under a name nobody has
taken (an upload), :func:`replace_folder` puts a folder written beside another in its place
(a cached benchmark index).

Every new file is written beside its final name under a hidden temporary name
(``.NAME.XXXXXXXX.tmp``, unique between threads and processes), flushed to disk, then moved
into place with one ``os.replace``: a reader sees the old file or the new one, never part of
one. When anything fails (a full disk, an error in the writer, an interrupt), the temporary
file is removed, the old file is as it was, and the error is raised. A new file gets the
permissions ``open`` gives (``0o666`` less the umask), not those of the file it replaces.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

Content = bytes | str | Callable[[Path], object]


def _beside(path: Path) -> Path:
    """A fresh hidden name in ``path``'s folder for what will become ``path``."""
    return path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: str | Path, content: Content, *, encoding: str = "utf-8") -> Path:
    """Make ``path`` hold ``content``, whole or not at all, and return it.

    ``content`` is bytes, a ``str`` (written in ``encoding``), or a function that writes the
    file at the path it is given (a library that writes to a file name; it must write that
    very name). The folder is flushed too, so the new name survives a crash.
    """
    path = Path(path)
    tmp = _beside(path)
    try:
        if callable(content):
            content(tmp)
        elif isinstance(content, str):
            with open(tmp, "x", encoding=encoding) as f:
                f.write(content)
        else:
            with open(tmp, "xb") as f:
                f.write(content)
        _fsync(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    try:  # the rename itself reaches the disk (POSIX; elsewhere a folder cannot be opened)
        _fsync(path.parent)
    except OSError:
        pass
    return path


def create_new(path: str | Path, content: Content, *, encoding: str = "utf-8", mode: int = 0o644) -> Path:
    """:func:`atomic_write` to a name that must not exist yet (``FileExistsError`` if it does).

    The name is taken first with ``O_CREAT | O_EXCL`` (atomic between threads and processes,
    so two writers of one name never replace each other; a reader meanwhile sees an empty
    file), then the content moved into it. On failure neither the name nor the temporary file
    is left.
    """
    path = Path(path)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode))
    try:
        return atomic_write(path, content, encoding=encoding)
    except BaseException:
        path.unlink(missing_ok=True)
        raise


def replace_folder(folder: str | Path, write: Callable[[Path], object]) -> Path:
    """``write`` a folder (at the path it is given) beside ``folder``, then put it in its place.

    A failed ``write`` removes what it left and keeps ``folder`` as it was. The old folder is
    removed just before the rename (a folder cannot replace a full one in one step), so a
    reader in that moment finds no folder -- never a partial one.
    """
    folder = Path(folder)
    tmp = _beside(folder)
    try:
        write(tmp)
        shutil.rmtree(folder, ignore_errors=True)
        tmp.rename(folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder
