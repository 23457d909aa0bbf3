"""The Space's temporary files: an upload that is not an image is deleted as soon as it is written (and the job
that names it is told why), and the folder is kept under a total size and an age, oldest first, never a file a
running job holds, never following a link."""

import io
import os
import time

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("gradio")

from cyclegan_hub.serving.uploads import TempCap, check_uploaded, refused_upload


def png() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def test_an_upload_that_is_not_an_image_is_deleted_at_once(tmp_path, monkeypatch):
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))
    folder = tmp_path / "gradio" / "abc"
    folder.mkdir(parents=True)
    (folder / "noise.png").write_bytes(os.urandom(4096))
    (folder / "x.ico").write_bytes(b"\x00\x00\x01\x00" + os.urandom(100))
    (folder / "six.png").write_bytes(png())
    outside = tmp_path / "mine.txt"
    outside.write_text("not the upload folder's")
    for name in ("noise.png", "x.ico", "six.png"):
        check_uploaded(str(folder / name))
    check_uploaded(str(outside))
    assert sorted(p.name for p in folder.iterdir()) == ["six.png"] and outside.exists()
    assert refused_upload(str(folder / "noise.png")) == (
        "noise.png is not an image in a format read here (PNG, JPEG, WEBP, GIF, BMP)"
    )
    assert refused_upload(str(folder / "six.png")) is None


def test_the_folder_is_kept_under_its_cap_oldest_first_except_what_a_job_holds(tmp_path):
    root = tmp_path / "temp"
    now = time.time()
    for i in range(10):
        path = root / f"{i}" / "file.png"
        path.parent.mkdir(parents=True)
        path.write_bytes(b"x" * 1000)
        os.utime(path, (now - 100 + i, now - 100 + i))
    target = tmp_path / "elsewhere.bin"
    target.write_bytes(b"y" * 5000)
    (root / "link").symlink_to(target)
    cap = TempCap(root, max_bytes=4500, max_age=3600)
    with cap.holding(str(root / "0" / "file.png")):
        cap.trim()
        left = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() or p.is_symlink())
    assert "0/file.png" in left  # the oldest, but a running job holds it
    assert target.read_bytes() == b"y" * 5000  # a link is removed, never followed
    assert cap.usage()[1] <= 4500 and "9/file.png" in left and "1/file.png" not in left
    assert not (root / "1").exists()  # an upload's emptied folder goes too


def test_files_older_than_the_age_go_whatever_the_size(tmp_path):
    old = tmp_path / "a" / "old.png"
    old.parent.mkdir()
    old.write_bytes(b"x")
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    new = tmp_path / "a" / "new.png"
    new.write_bytes(b"x")
    TempCap(tmp_path, max_bytes=10**9, max_age=3600).trim()
    assert not old.exists() and new.exists()
