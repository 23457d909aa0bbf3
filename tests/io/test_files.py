"""Safe reads and atomic writes: the bottom floor every refusal of a link, a device or a half-written file relies on."""

import json
import os

import pytest

from cyclegan_hub.io.files import atomic_write, atomic_write_json, inside, read_file, read_json, replace_folder
from tests.conftest import no_hang


def test_read_file_refuses_devices_folders_links_and_oversized_files(tmp_path):
    (tmp_path / "small").write_bytes(b"12345")
    assert read_file(tmp_path / "small", 5) == b"12345"
    with pytest.raises(ValueError, match="is 6 bytes, above the limit of 5 bytes"):
        (tmp_path / "six").write_bytes(b"123456")
        read_file(tmp_path / "six", 5)
    with no_hang(what="reading a device and a FIFO"):  # /dev/zero never ends; a FIFO without a writer never opens
        with pytest.raises(ValueError, match=r"/dev/zero is not a regular file \(a device, pipe or socket\)"):
            read_file("/dev/zero", 10)
        os.mkfifo(tmp_path / "fifo")
        with pytest.raises(ValueError, match="fifo is not a regular file"):
            read_file(tmp_path / "fifo", 10)
    with pytest.raises(ValueError, match="is a folder, not a file"):
        read_file(tmp_path, 10)
    with pytest.raises(FileNotFoundError, match="missing: no such file"):
        read_file(tmp_path / "missing", 10)
    os.symlink(tmp_path / "small", tmp_path / "link")
    assert read_file(tmp_path / "link", 5) == b"12345"  # a user's own link is followed when asked for
    with pytest.raises(ValueError, match="link is a symbolic link; only regular files are read"):
        read_file(tmp_path / "link", 5, follow_links=False)


@pytest.mark.parametrize(
    "content,message",
    [
        ("{", "is not valid JSON (Expecting property name enclosed in double quotes at line 1, column 2)"),
        ("[1]", "must hold an object, not a list"),
        ("[" * 50 + "]" * 50, "nested too deeply"),
        (b"\xff\xfe", "is not valid JSON"),
    ],
)
def test_read_json_says_what_is_wrong_in_one_line_naming_the_file(tmp_path, content, message):
    path = tmp_path / "c.json"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(ValueError) as info:
        read_json(path, what="config.json of m")
    assert str(info.value).startswith("config.json of m ") and message in str(info.value)


def test_inside_refuses_escapes_and_links(tmp_path):
    (tmp_path / "run" / "a").mkdir(parents=True)
    (tmp_path / "other").mkdir()
    assert inside(tmp_path / "run", tmp_path / "run" / "a" / "x")
    assert not inside(tmp_path / "run", tmp_path / "run" / ".." / "other")
    assert not inside(tmp_path / "run", "/etc")
    os.symlink(tmp_path / "other", tmp_path / "run" / "b")
    assert not inside(tmp_path / "run", tmp_path / "run" / "b" / "x")


def test_atomic_write_gives_ordinary_permissions_and_leaves_nothing_on_failure(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write_json(tmp_path / "m.json", {"a": 1})
        assert (tmp_path / "m.json").stat().st_mode & 0o777 == 0o644
        assert json.loads((tmp_path / "m.json").read_text()) == {"a": 1}

        def fail(f):
            f.write(b"half")
            raise OSError(28, "No space left on device")

        with pytest.raises(OSError):
            atomic_write(tmp_path / "m.json", fail)
        assert json.loads((tmp_path / "m.json").read_text()) == {"a": 1}  # the old file, whole
        assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json"]  # no temporary file left
    finally:
        os.umask(old)


def test_replace_folder_swaps_whole_folders_and_replaces_links_without_following_them(tmp_path):
    replace_folder(tmp_path / "out", lambda d: (d / "a").write_text("1"))
    with pytest.raises(RuntimeError):
        replace_folder(tmp_path / "out", lambda d: ((d / "a").write_text("2"), (_ for _ in ()).throw(RuntimeError())))
    assert (tmp_path / "out" / "a").read_text() == "1" and sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "keep").write_text("mine")
    os.symlink(tmp_path / "elsewhere", tmp_path / "linked")
    replace_folder(tmp_path / "linked", lambda d: (d / "a").write_text("3"))
    assert not (tmp_path / "linked").is_symlink() and (tmp_path / "elsewhere" / "keep").read_text() == "mine"
