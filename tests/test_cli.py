import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from cyclegan_hub.cli import main

from .image_cases import BAD_FILES


@pytest.fixture
def model_dir(tmp_path, tiny_gray):
    tiny_gray.save_pretrained(tmp_path / "model")
    return tmp_path / "model"


def test_translate_a_file(model_dir, tmp_path, capsys):
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (28, 28), dtype=np.uint8)).save(tmp_path / "six.png")
    assert main(["translate", "--model", str(model_dir), str(tmp_path / "six.png"), "--output", str(tmp_path / "nine.png")]) == 0
    out = Image.open(tmp_path / "nine.png")
    assert out.size == (28, 28) and out.mode == "L"


def test_translate_a_folder_skips_bad_files_and_says_so(model_dir, tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    for i in range(3):
        Image.new("RGB", (20 + i, 20)).save(src / f"img{i}.jpg")
    (src / "broken.png").write_bytes(BAD_FILES["truncated.png"][0])
    (src / "notes.txt").write_text("ignored: not an image suffix")
    assert main(["translate", "--model", str(model_dir), str(src), "-o", str(tmp_path / "out")]) == 1
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["img0.png", "img1.png", "img2.png"]
    err = capsys.readouterr().err
    assert "skipped" in err and "broken.png is truncated" in err
    assert err.strip().splitlines()[-1] == "cyclegan-hub: error: 1 of 4 file(s) could not be read"


@pytest.mark.parametrize(
    "args,message",
    [
        (["translate", "--model", "{model}", "{tmp}/missing.png", "-o", "{tmp}/o.png"], "missing.png: no such file or folder"),
        (["translate", "--model", "{tmp}/nomodel", "{img}", "-o", "{tmp}/o.png"], "no such model folder, and not a Hub repo id"),
        (["translate", "--model", "nobody/nothing", "{img}", "-o", "{tmp}/o.png"], "not in the local cache and the Hub cannot be reached"),
        (["translate", "--model", "{model}", "{img}", "-o", "{tmp}/o.xyz"], "give an image file name"),
    ],
)
def test_user_errors_are_one_line(model_dir, tmp_path, args, message):
    Image.new("L", (8, 8)).save(tmp_path / "img.png")
    args = [a.format(model=model_dir, tmp=tmp_path, img=tmp_path / "img.png") for a in args]
    result = subprocess.run([sys.executable, "-m", "cyclegan_hub.cli", *args], capture_output=True, text=True,
                            env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}, timeout=120)
    assert result.returncode == 1
    assert result.stderr.startswith("cyclegan-hub: error: ") and message in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_help_lists_translate():
    result = subprocess.run([sys.executable, "-m", "cyclegan_hub.cli", "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "translate" in result.stdout
