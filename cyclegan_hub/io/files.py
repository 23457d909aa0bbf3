"""Files, read and written safely: the bottom floor that every other module uses for I/O it does not trust.

- ``read_file`` reads a regular file up to a size cap, refusing devices, FIFOs and folders before reading a byte,
  and (``follow_links=False``) refusing symbolic links, so that a run folder or an upload cannot point us at
  ``/dev/zero`` or at a file outside it.
- ``read_json`` does the same for JSON and says, in one line naming the file, what is wrong with it.
- ``inside`` tells whether a path stays inside a folder without passing through a link.
- ``atomic_write`` writes a file beside its target and renames it into place, with the permissions a plain
  ``open()`` would give (``mkstemp`` would leave 0600); ``replace_folder`` does the same for a whole folder.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

#: JSON files we read (config.json, training_state.json, card inputs) are small; anything larger is refused.
MAX_JSON_BYTES = 4 * 2**20
#: JSON nesting deeper than this is refused (the stdlib parser recurses, and a deep file would crash it).
MAX_JSON_DEPTH = 32


def read_file(path: str | os.PathLike, max_bytes: int, *, what: str | None = None, follow_links: bool = True) -> bytes:
    """The bytes of a regular file of at most ``max_bytes``.

    Raises FileNotFoundError for a missing path and ValueError (naming ``what`` or the path) for a folder, a
    device or other special file, a symbolic link when ``follow_links`` is false, or a file over the cap (checked
    before reading, and again while reading, in case it grows)."""
    name = what or str(path)
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) * (not follow_links) | getattr(os, "O_NONBLOCK", 0)
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"{name}: no such file") from None
    if stat.S_ISLNK(info.st_mode) and not follow_links:
        raise ValueError(f"{name} is a symbolic link; only regular files are read")
    if stat.S_ISDIR(os.stat(path).st_mode if stat.S_ISLNK(info.st_mode) else info.st_mode):
        raise ValueError(f"{name} is a folder, not a file")
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer; the fstat below then refuses it.
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise FileNotFoundError(f"{name}: no such file") from None
    except OSError as err:
        if not follow_links and os.path.islink(path):
            raise ValueError(f"{name} is a symbolic link; only regular files are read") from None
        raise ValueError(f"{name} cannot be opened ({err.strerror})") from None
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise ValueError(f"{name} is not a regular file (a device, pipe or socket)")
        if info.st_size > max_bytes:
            raise ValueError(f"{name} is {_size(info.st_size)}, above the limit of {_size(max_bytes)}")
        data = f.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise ValueError(f"{name} is larger than the limit of {_size(max_bytes)}")
    return data


def read_json(
    path: str | os.PathLike,
    *,
    what: str | None = None,
    expect: type = dict,
    max_bytes: int = MAX_JSON_BYTES,
    follow_links: bool = True,
):
    """A JSON value of type ``expect`` from a small regular file; every problem is a ValueError naming the file."""
    name = what or str(path)
    data = read_file(path, max_bytes, what=name, follow_links=follow_links)
    return parse_json(data, name, expect)


def parse_json(data: bytes | str, name: str, expect: type = dict):
    try:
        value = json.loads(data)
    except json.JSONDecodeError as err:
        raise ValueError(f"{name} is not valid JSON ({err.msg} at line {err.lineno}, column {err.colno})") from None
    except UnicodeDecodeError:
        raise ValueError(f"{name} is not valid JSON (not UTF-8 text)") from None
    except RecursionError:
        raise ValueError(f"{name} is nested too deeply to be a valid file") from None
    if _depth(value) > MAX_JSON_DEPTH:
        raise ValueError(f"{name} is nested too deeply ({MAX_JSON_DEPTH} levels at most)")
    if expect is not None and not isinstance(value, expect):
        kinds = {dict: "an object", list: "a list"}
        raise ValueError(f"{name} must hold {kinds.get(expect, expect.__name__)}, not {_kind(value)}")
    return value


def _depth(value, level: int = 0) -> int:
    if level > MAX_JSON_DEPTH:
        return level
    if isinstance(value, dict):
        return max((_depth(v, level + 1) for v in value.values()), default=level + 1)
    if isinstance(value, list):
        return max((_depth(v, level + 1) for v in value), default=level + 1)
    return level


def _kind(value) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number"
    )


def _size(n: int) -> str:
    for unit, scale in (("GB", 2**30), ("MB", 2**20), ("KB", 2**10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"


def inside(root: str | os.PathLike, path: str | os.PathLike) -> bool:
    """Whether ``path`` lies inside ``root`` (or is it) and no component between them is a symbolic link."""
    root, path = Path(os.path.abspath(root)), Path(os.path.abspath(path))
    try:
        relative = path.relative_to(root)
    except ValueError:
        return False
    if ".." in relative.parts:
        return False
    current = root
    for part in relative.parts:
        current = current / part
        if current.is_symlink():
            return False
    return True


def regular_file_inside(root: str | os.PathLike, path: str | os.PathLike) -> bool:
    """A regular file (not a link, device or folder) inside ``root``, reached through no link."""
    return inside(root, path) and Path(path).is_file() and not Path(path).is_symlink()


def own_file(root: str | os.PathLike, path: str | os.PathLike) -> bool:
    """A regular file inside ``root`` whose bytes are its own: no link on the way and no other name (a hard link,
    ``st_nlink > 1``, shares its bytes with a file that may lie anywhere). What is published must be this."""
    return regular_file_inside(root, path) and os.lstat(path).st_nlink == 1


def default_file_mode() -> int:
    """What ``open(path, "w")`` gives a new file: 0666 less the process umask."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def give_default_mode(path: str | os.PathLike) -> None:
    """Give a file written by a library that creates it private (safetensors writes 0600) the permissions a plain
    ``open()`` would: readable by the other users and containers a model or checkpoint is meant for."""
    os.chmod(path, default_file_mode())


def atomic_write(target: str | os.PathLike, write: Callable[[IO[bytes]], object]) -> None:
    """Call ``write(f)`` on a temporary file beside ``target``, fsync it, then rename it over ``target``: a reader
    (or a crash) sees the old file or the new one, never half of one. The file gets ordinary permissions."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, default_file_mode())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(target: str | os.PathLike, text: str) -> None:
    atomic_write(target, lambda f: f.write(text.encode()))


def atomic_write_json(target: str | os.PathLike, value) -> None:
    atomic_write_text(target, json.dumps(value, indent=2) + "\n")


def remove(path: str | os.PathLike) -> None:
    """Remove a file, a link (never what it points to) or a folder tree; nothing if missing."""
    path = Path(path)
    if path.is_symlink() or path.is_file():
        path.unlink(missing_ok=True)
    elif path.is_dir():
        shutil.rmtree(path)


def replace_folder(target: str | os.PathLike, fill: Callable[[Path], object]) -> None:
    """Build a folder with ``fill(tmp)`` beside ``target`` and swap it in. A crash while filling leaves the old
    folder untouched; the swap itself keeps the old folder until the new one is in place. A link at ``target`` is
    replaced, never followed."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".tmp-{target.name}")
    old = target.with_name(f".old-{target.name}")
    remove(tmp)
    tmp.mkdir()
    try:
        fill(tmp)
        for path in tmp.rglob("*"):
            if path.is_file():
                with open(path, "rb") as f:
                    os.fsync(f.fileno())
    except BaseException:
        remove(tmp)
        raise
    remove(old)
    if target.is_symlink() or target.is_file():
        target.unlink()
    elif target.exists():
        os.replace(target, old)
    os.replace(tmp, target)
    remove(old)
