import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from cyclegan_hub.cli import main
from tests.support.image_cases import BAD_FILES


@pytest.fixture
def model_dir(tmp_path, tiny_gray):
    tiny_gray.save_pretrained(tmp_path / "model")
    return tmp_path / "model"


def test_translate_a_file(model_dir, tmp_path, capsys):
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (28, 28), dtype=np.uint8)).save(tmp_path / "six.png")
    assert (
        main(
            ["translate", "--model", str(model_dir), str(tmp_path / "six.png"), "--output", str(tmp_path / "nine.png")]
        )
        == 0
    )
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
    assert err.strip().splitlines()[-1] == "cyclegan-hub: error: 1 of 4 file(s) could not be translated"


def test_a_folder_with_a_header_only_jpeg_and_clashing_names_loses_nothing(model_dir, tmp_path, capsys):
    import io

    src = tmp_path / "in"
    src.mkdir()
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 10, 10)).save(buffer, "JPEG")
    (src / "header-only.jpg").write_bytes(buffer.getvalue()[:300])  # PIL raises OSError, not ValueError
    Image.new("L", (20, 20), 10).save(src / "x.png")
    Image.new("L", (24, 20), 200).save(src / "x.jpg")  # the same stem: both must be written
    Image.new("L", (16, 16), 90).save(src / "y.bmp")
    assert main(["translate", "--model", str(model_dir), str(src), "-o", str(tmp_path / "out")]) == 1
    out = {p.name: Image.open(p).size for p in (tmp_path / "out").iterdir()}
    assert out == {"x_png.png": (20, 20), "x_jpg.png": (24, 20), "y.png": (16, 16)}
    err = capsys.readouterr().err
    assert "skipped " + str(src / "header-only.jpg") + " is truncated or corrupt" in err
    assert err.strip().splitlines()[-1] == "cyclegan-hub: error: 1 of 4 file(s) could not be translated"
    # translating a folder into itself would overwrite its inputs: refused
    assert main(["translate", "--model", str(model_dir), str(src), "-o", str(src)]) == 1
    assert "is the input folder" in capsys.readouterr().err


def test_translate_outputs_have_ordinary_permissions(model_dir, tmp_path):
    Image.new("L", (12, 12)).save(tmp_path / "in.png")
    assert (
        main(["translate", "--model", str(model_dir), str(tmp_path / "in.png"), "-o", str(tmp_path / "out.png")]) == 0
    )
    assert (tmp_path / "out.png").stat().st_mode & 0o777 == 0o644
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary file left


@pytest.mark.parametrize(
    "args,message",
    [
        (
            ["translate", "--model", "{model}", "{tmp}/missing.png", "-o", "{tmp}/o.png"],
            "missing.png: no such file or folder",
        ),
        (["translate", "--model", "{tmp}/nomodel", "{img}", "-o", "{tmp}/o.png"], "nomodel: no such model folder"),
        (
            ["translate", "--model", "nobody/nothing", "{img}", "-o", "{tmp}/o.png"],
            "no such local folder, and it is not in the Hub cache",
        ),
        (["translate", "--model", "{model}", "{img}", "-o", "{tmp}/o.xyz"], "give an image file name"),
    ],
)
def test_user_errors_are_one_line(model_dir, tmp_path, args, message):
    Image.new("L", (8, 8)).save(tmp_path / "img.png")
    args = [a.format(model=model_dir, tmp=tmp_path, img=tmp_path / "img.png") for a in args]
    result = subprocess.run(
        [sys.executable, "-m", "cyclegan_hub.cli", *args],
        capture_output=True,
        text=True,
        env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"},
        timeout=120,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("cyclegan-hub: error: ") and message in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_help_lists_every_command_and_the_version():
    result = subprocess.run(
        [sys.executable, "-m", "cyclegan_hub.cli", "--help"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0
    for command in ("translate", "eval", "export", "convert", "push", "deploy-space", "serve"):
        assert command in result.stdout
    from cyclegan_hub import __version__

    version = subprocess.run(
        [sys.executable, "-m", "cyclegan_hub.cli", "--version"], capture_output=True, text=True, timeout=60
    )
    assert version.stdout.strip() == f"cyclegan-hub {__version__}"
