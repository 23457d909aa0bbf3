"""The zoos by name, downloaded from a local HTTP server that serves files in the published layouts (the real URLs
are unreachable from tests; ``--zoo-mirror`` points the download there): converted pairs, a resumed download, a file
over the cap or shorter than announced, CUT's tar read member by member, and never a half-written output."""

import io
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import torch

from cyclegan_hub import CycleGenerator
from cyclegan_hub.cli import main
from cyclegan_hub.convert import zoo
from tests.support.official_layout import ResnetGenerator, randomized
from tests.support.other_layouts import CUTGenerator


class FileServer:
    """Serves ``files`` (path -> bytes) with HTTP Range support; ``drop_after`` cuts the next body after that many
    bytes (the connection closes), ``announce`` overrides the next Content-Length."""

    def __init__(self, files: dict[str, bytes]):
        self.files, self.ranges, self.drop_after, self.announce = files, [], None, None
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                data = server.files.get(self.path)
                if data is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                wanted = self.headers.get("Range")
                server.ranges.append(wanted)
                start = int(wanted.split("=")[1].split("-")[0]) if wanted else 0
                body = data[start:]
                self.send_response(206 if wanted else 200)
                if wanted:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                length, server.announce = server.announce or len(body), None
                self.send_header("Content-Length", str(length))
                self.end_headers()
                cut, server.drop_after = server.drop_after, None
                self.wfile.write(body if cut is None else body[:cut])
                self.close_connection = True

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self):
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def _saved(net) -> bytes:
    buffer = io.BytesIO()
    torch.save(net.state_dict(), buffer)
    return buffer.getvalue()


@pytest.fixture
def nets():
    return {
        "horse2zebra": randomized(ResnetGenerator(ngf=8, n_blocks=2), seed=1),
        "zebra2horse": randomized(ResnetGenerator(ngf=8, n_blocks=2), seed=2),
        "cut": randomized(CUTGenerator(ngf=8, n_blocks=2), seed=3),
    }


@pytest.fixture
def zoo_server(nets):
    tar_bytes = io.BytesIO()
    with tarfile.open(fileobj=tar_bytes, mode="w") as tar:
        for name, data in (
            ("../../outside.pth", b"never read"),  # a member whose name would escape: skipped unread
            ("pretrained_models/horse2zebra_cut_pretrained/latest_net_D.pth", b"not ours"),
            ("pretrained_models/horse2zebra_cut_pretrained/latest_net_G.pth", _saved(nets["cut"])),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    files = {
        "/cyclegan/pretrained_models/horse2zebra.pth": _saved(nets["horse2zebra"]),
        "/cyclegan/pretrained_models/zebra2horse.pth": _saved(nets["zebra2horse"]),
        "/CUT/pretrained_models.tar": tar_bytes.getvalue(),
    }
    with FileServer(files) as server:
        yield server


def test_zoo_lists_every_name_with_its_source_and_license(capsys):
    assert main(["zoo"]) == 0
    out = capsys.readouterr().out
    for name in ("horse2zebra", "style_monet", "iphone2dslr_flower", "cut/horse2zebra", "fastcut/cityscapes"):
        assert f"\n{name} " in out
    assert "http://efrosgans.eecs.berkeley.edu/cyclegan/pretrained_models/horse2zebra.pth" in out
    assert (
        "http://efrosgans.eecs.berkeley.edu/CUT/pretrained_models.tar (horse2zebra_cut_pretrained/latest_net_G.pth)"
        in out
    )


def test_a_zoo_pair_downloads_and_converts_as_twin_generators(zoo_server, nets, tmp_path, capsys):
    out = tmp_path / "runs" / "horse2zebra"
    args = [
        "convert",
        "--zoo",
        "horse2zebra",
        "--with-reverse",
        "--zoo-mirror",
        zoo_server.url,
        "--cache-dir",
        str(tmp_path / "cache"),
        "--output",
        str(out),
    ]
    assert main(args) == 0, capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["card.json", "generator_AtoB", "generator_BtoA", "samples"]
    x = torch.rand(1, 3, 64, 80) * 2 - 1
    for folder, original, domains in (
        ("generator_AtoB", "horse2zebra", ("horse", "zebra")),
        ("generator_BtoA", "zebra2horse", ("zebra", "horse")),
    ):
        g = CycleGenerator.from_pretrained(out / folder)
        assert (g.config["source_domain"], g.config["target_domain"]) == domains
        with torch.inference_mode():
            assert (g(x) - nets[original](x)).abs().max().item() <= 1e-5
    import hashlib
    import json

    digest = hashlib.sha256(zoo_server.files["/cyclegan/pretrained_models/horse2zebra.pth"]).hexdigest()
    origin = json.loads((out / "card.json").read_text())["origin"]
    assert f"downloaded from {zoo_server.url}/cyclegan/pretrained_models/horse2zebra.pth (SHA-256 `{digest}`)" in origin
    assert "released by the authors of CycleGAN" in origin
    # the cache serves a second conversion without a request
    before = len(zoo_server.ranges)
    assert main(args[:-1] + [str(tmp_path / "again")]) == 0
    assert len(zoo_server.ranges) == before


def test_cut_comes_out_of_its_tar_in_memory(zoo_server, nets, tmp_path, capsys):
    out = tmp_path / "cut"
    assert (
        main(
            [
                "convert",
                "--zoo",
                "cut/horse2zebra",
                "--zoo-mirror",
                zoo_server.url,
                "--cache-dir",
                str(tmp_path / "cache"),
                "--output",
                str(out),
            ]
        )
        == 0
    )
    assert "latest_net_G.pth: ResNet-2 generator (CUT / FastCUT layout)" in capsys.readouterr().out
    g = CycleGenerator.from_pretrained(out)
    x = torch.rand(1, 3, 48, 72) * 2 - 1
    with torch.inference_mode():
        assert (g(x) - nets["cut"](x)).abs().max().item() <= 1e-5
    assert "released by the authors of CUT" in (out / "README.md").read_text()
    # nothing was extracted by name: the cache holds the tar and nothing else, nothing appeared above it
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["pretrained_models.tar"]
    assert not (tmp_path / "outside.pth").exists() and not (tmp_path.parent / "outside.pth").exists()
    assert (
        main(
            [
                "convert",
                "--zoo",
                "cut/horse2zebra",
                "--with-reverse",
                "--zoo-mirror",
                zoo_server.url,
                "--output",
                str(tmp_path / "x"),
            ]
        )
        == 1
    )
    assert "cut/horse2zebra has no released reverse direction" in capsys.readouterr().err


def test_an_interrupted_download_resumes_and_leaves_no_output(zoo_server, nets, tmp_path, capsys):
    cache, out = tmp_path / "cache", tmp_path / "horse2zebra"
    args = [
        "convert",
        "--zoo",
        "horse2zebra",
        "--zoo-mirror",
        zoo_server.url,
        "--cache-dir",
        str(cache),
        "--output",
        str(out),
    ]
    zoo_server.drop_after = 10_000
    assert main(args) == 1
    err = capsys.readouterr().err.strip()
    assert "the download stopped at 10,000 of" in err and "run the same command again to resume it" in err
    assert "\n" not in err and not out.exists()
    assert (cache / "horse2zebra.pth.part").stat().st_size == 10_000 and not (cache / "horse2zebra.pth").exists()
    assert main(args) == 0
    assert zoo_server.ranges[-1] == "bytes=10000-"  # the second run asked only for the rest
    expected = zoo_server.files["/cyclegan/pretrained_models/horse2zebra.pth"]
    assert (cache / "horse2zebra.pth").read_bytes() == expected and not (cache / "horse2zebra.pth.part").exists()


def test_a_file_over_the_cap_is_refused_before_its_body(zoo_server, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(zoo, "MAX_MODEL_BYTES", 50_000)
    zoo_server.announce = 10**12  # a server that says 1 TB is coming
    assert (
        main(
            [
                "convert",
                "--zoo",
                "zebra2horse",
                "--zoo-mirror",
                zoo_server.url,
                "--cache-dir",
                str(tmp_path / "cache"),
                "--output",
                str(tmp_path / "out"),
            ]
        )
        == 1
    )
    err = capsys.readouterr().err
    assert "zebra2horse.pth is 953674 MB, above the limit of 0 MB; not downloaded" in err
    assert not (tmp_path / "cache" / "zebra2horse.pth.part").exists() and not (tmp_path / "out").exists()


def test_unknown_names_and_bad_mirrors_are_one_line(tmp_path, capsys):
    assert main(["convert", "--zoo", "horse2unicorn", "--output", str(tmp_path / "o")]) == 1
    assert "no zoo model 'horse2unicorn'; `cyclegan-hub zoo` lists them" in capsys.readouterr().err
    assert main(["convert", "--zoo", "horse2zebra", "--zoo-mirror", "ftp://x", "--output", str(tmp_path / "o")]) == 1
    assert "zoo mirror 'ftp://x' is not an http(s) URL" in capsys.readouterr().err
