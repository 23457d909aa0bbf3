"""The published pretrained generators, by name: where each is downloaded from, what it translates, its license.

``cyclegan-hub convert --zoo horse2zebra`` downloads the authors' file (resumable: a ``.part`` file that a rerun
continues with an HTTP Range request; its size checked from the response headers against a cap before the body is
read, and against what arrives), records its SHA-256 and converts it. CUT's models come in one tar: it is read member
by member in memory, and only the expected ``latest_net_G.pth`` is taken (nothing is extracted to disk by name).
pix2pix's (``pix2pix/edges2shoes``, ...) are one way each, and are cached under ``pix2pix/``: three of their files
share their names with CycleGAN's (``sat2map.pth``, ``map2sat.pth``, ``facades_label2photo.pth``).
``--zoo-mirror URL`` (or ``CYCLEGAN_HUB_ZOO_MIRROR``) replaces the scheme and host of every URL and keeps its path.
"""

from __future__ import annotations

import http.client
import os
import tarfile
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from .checkpoints import ConversionError

CYCLEGAN_URL = "http://efrosgans.eecs.berkeley.edu/cyclegan/pretrained_models/{name}.pth"
CUT_URL = "http://efrosgans.eecs.berkeley.edu/CUT/pretrained_models.tar"
TURBO_URL = "https://www.cs.cmu.edu/~img2img-turbo/models/{name}.pkl"
#: Their scripts/download_pix2pix_model.sh: ``models-pytorch/$FILE.pth``.
PIX2PIX_URL = "http://efrosgans.eecs.berkeley.edu/pix2pix/models-pytorch/{name}.pth"
TURBO = "CycleGAN-Turbo"
PIX2PIX = "pix2pix"
MIRROR_VARIABLE = "CYCLEGAN_HUB_ZOO_MIRROR"
CACHE_VARIABLE = "CYCLEGAN_HUB_CACHE"
#: The most a zoo file may be: a ResNet-9 generator is 45 MB; CUT's tar holds six of them.
MAX_MODEL_BYTES = 128 << 20
MAX_TAR_BYTES = 1 << 30
MAX_TURBO_BYTES = 3 << 30  # their pickles hold two full VAEs twice beside the adapters: ~1.7 GB
MAX_PIX2PIX_BYTES = 256 << 20  # a U-Net-256 generator with batch norm: 54.4 M values, ~218 MB
#: The most one tar member may be (read in memory), and how many members are looked at.
MAX_MEMBERS = 10_000

CYCLEGAN_PAPER = (
    "Jun-Yan Zhu, Taesung Park, Phillip Isola, Alexei A. Efros: *Unpaired Image-to-Image Translation using "
    "Cycle-Consistent Adversarial Networks*, ICCV 2017, [paper](https://arxiv.org/abs/1703.10593)"
)
CUT_PAPER = (
    "Taesung Park, Alexei A. Efros, Richard Zhang, Jun-Yan Zhu: *Contrastive Learning for Unpaired Image-to-Image "
    "Translation*, ECCV 2020, [paper](https://arxiv.org/abs/2007.15651)"
)
CYCLEGAN_CODE = "[pytorch-CycleGAN-and-pix2pix](https://github.com/junyanz/pytorch-CycleGAN-and-pix2pix)"
CUT_CODE = "[contrastive-unpaired-translation](https://github.com/taesungp/contrastive-unpaired-translation)"
PIX2PIX_PAPER = (
    "Phillip Isola, Jun-Yan Zhu, Tinghui Zhou, Alexei A. Efros: *Image-to-Image Translation with Conditional "
    "Adversarial Networks*, CVPR 2017, [paper](https://arxiv.org/abs/1611.07004)"
)
TURBO_PAPER = (
    "[Parmar et al., One-Step Image Translation with Text-to-Image Models, 2024](https://arxiv.org/abs/2403.12036)"
)
TURBO_CODE = "[img2img-turbo](https://github.com/GaParmar/img2img-turbo)"


@dataclass(frozen=True)
class ZooModel:
    name: str
    method: str  # "CycleGAN", "CUT", "FastCUT", "pix2pix" or "CycleGAN-Turbo"
    source_domain: str
    target_domain: str
    reverse: str | None  # the zoo name of the other direction, where one was released
    url: str
    member: str | None = None  # the file inside a tar
    license: str = "bsd"

    @property
    def architecture(self) -> str:
        if self.method == "CycleGAN":
            return "ResNet-9"
        if self.method == TURBO:
            return "SD-Turbo + LoRA"
        if self.method == PIX2PIX:
            return "U-Net-256"
        return "ResNet-9, anti-aliased"

    @property
    def cache_name(self) -> str:
        """Where its download is kept, under the cache folder: the URL's file name (under ``pix2pix/`` for pix2pix's,
        whose sat2map.pth, map2sat.pth and facades_label2photo.pth are also CycleGAN's file names)."""
        name = Path(urllib.parse.urlsplit(self.url).path).name
        return f"{PIX2PIX}/{name}" if self.method == PIX2PIX else name

    @property
    def one_way(self) -> str | None:
        """Why it has no reverse where that is its method's nature (pix2pix), for a one-line refusal; else None."""
        if self.method != PIX2PIX:
            return None
        source, _, target = self.name.split("/")[-1].partition("2")
        other = f"{PIX2PIX}/{target}2{source}"
        separate = f"; {other} is a model of its own: convert it separately" if other in ZOO else ""
        return f"pix2pix models translate one way, trained on pairs for one direction{separate}"

    def credit(self) -> str:
        if self.method == TURBO:
            return f"The `{self.name}` translator released by the authors of CycleGAN-Turbo ({TURBO_PAPER}) with {TURBO_CODE}"
        paper, code = {
            "CycleGAN": (CYCLEGAN_PAPER, CYCLEGAN_CODE),
            PIX2PIX: (PIX2PIX_PAPER, CYCLEGAN_CODE),
        }.get(self.method, (CUT_PAPER, CUT_CODE))
        method = "" if self.method in ("CycleGAN", PIX2PIX) else f" ({self.method})"
        return (
            f"The `{self.name}` generator{method} released by the authors of {self.method.replace('Fast', '')} "
            f"({paper}) with their implementation {code}, under its license (BSD)"
        )


def _cyclegan(name: str, a: str, b: str, reverse: str | None) -> ZooModel:
    return ZooModel(name, "CycleGAN", a, b, reverse, CYCLEGAN_URL.format(name=name))


def _cut(task: str, method: str, a: str, b: str) -> ZooModel:
    member = f"{task}_{method.lower()}_pretrained/latest_net_G.pth"
    return ZooModel(f"{method.lower()}/{task}", method, a, b, None, CUT_URL, member)


def _turbo(task: str, a: str, b: str, reverse: str) -> ZooModel:
    # released with img2img-turbo, whose license is MIT
    return ZooModel(f"turbo/{task}", TURBO, a, b, f"turbo/{reverse}", TURBO_URL.format(name=task), license="mit")


def _pix2pix(task: str, a: str, b: str) -> ZooModel:
    # one way each: sat2map and map2sat were trained separately, neither is the other's reverse
    return ZooModel(f"{PIX2PIX}/{task}", PIX2PIX, a, b, None, PIX2PIX_URL.format(name=task))


def _pair(forward: str, reverse: str, a: str, b: str) -> list[ZooModel]:
    """Both directions of a task released as a pair: each names the other as its reverse."""
    return [_cyclegan(forward, a, b, reverse), _cyclegan(reverse, b, a, forward)]


ZOO: dict[str, ZooModel] = {
    m.name: m
    for m in (
        *_pair("horse2zebra", "zebra2horse", "horse", "zebra"),
        *_pair("apple2orange", "orange2apple", "apple", "orange"),
        *_pair("summer2winter_yosemite", "winter2summer_yosemite", "summer", "winter"),
        *_pair("monet2photo", "style_monet", "monet", "photo"),
        _cyclegan("style_cezanne", "photo", "cezanne", None),
        _cyclegan("style_ukiyoe", "photo", "ukiyoe", None),
        _cyclegan("style_vangogh", "photo", "vangogh", None),
        *_pair("map2sat", "sat2map", "map", "satellite"),
        *_pair("facades_label2photo", "facades_photo2label", "label", "facade"),
        *_pair("cityscapes_label2photo", "cityscapes_photo2label", "label", "street"),
        _cyclegan("iphone2dslr_flower", "iphone", "dslr", None),
        *(
            _cut(task, method, a, b)
            for method in ("CUT", "FastCUT")
            for task, a, b in (
                ("horse2zebra", "horse", "zebra"),
                ("cat2dog", "cat", "dog"),
                ("cityscapes", "label", "street"),
            )
        ),
        # the names of their scripts/download_pix2pix_model.sh
        _pix2pix("edges2shoes", "edges", "shoe"),
        _pix2pix("sat2map", "satellite", "map"),
        _pix2pix("map2sat", "map", "satellite"),
        _pix2pix("facades_label2photo", "label", "facade"),
        _pix2pix("day2night", "day", "night"),
        _turbo("day2night", "day", "night", "night2day"),
        _turbo("night2day", "night", "day", "day2night"),
        _turbo("clear2rainy", "clear", "rainy", "rainy2clear"),
        _turbo("rainy2clear", "rainy", "clear", "clear2rainy"),
    )
}


def get(name: str) -> ZooModel:
    if name not in ZOO:
        close = [n for n in ZOO if name.split("/")[-1] in n]
        hint = f" (did you mean {', '.join(close[:4])}?)" if close else ""
        raise ConversionError(f"no zoo model {name!r}{hint}; `cyclegan-hub zoo` lists them")
    return ZOO[name]


def table() -> list[str]:
    """The zoo as lines: name, method, direction, architecture, reverse, license, URL."""
    rows = [("name", "method", "translates", "architecture", "reverse", "license", "source")]
    for m in ZOO.values():
        source = m.url + (f" ({m.member})" if m.member else "")
        translates = f"{m.source_domain} -> {m.target_domain}"
        rows.append((m.name, m.method, translates, m.architecture, m.reverse or "-", m.license.upper(), source))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[-1] for r in rows]


# ---------------------------------------------------------------------------------------------------------------
# downloading: capped, resumable, never a half-written file under the final name
# ---------------------------------------------------------------------------------------------------------------


def mirrored(url: str, mirror: str | None) -> str:
    """``url`` with its scheme and host replaced by the mirror's (its path kept, after the mirror's own path)."""
    mirror = mirror or os.environ.get(MIRROR_VARIABLE)
    if not mirror:
        return url
    base = urllib.parse.urlsplit(mirror)
    if base.scheme not in ("http", "https") or not base.netloc:
        raise ConversionError(f"zoo mirror {mirror!r} is not an http(s) URL")
    path = base.path.rstrip("/") + urllib.parse.urlsplit(url).path
    return urllib.parse.urlunsplit((base.scheme, base.netloc, path, "", ""))


def cache_dir(folder: str | os.PathLike | None = None) -> Path:
    if folder:
        return Path(folder)
    if os.environ.get(CACHE_VARIABLE):
        return Path(os.environ[CACHE_VARIABLE]) / "zoo"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "cyclegan-hub" / "zoo"


def _total_from(response, offset: int) -> int | None:
    """The whole file's size, from Content-Range (a resumed download) or Content-Length."""
    if response.status == 206:
        content_range = response.headers.get("Content-Range", "")
        if not content_range.startswith(f"bytes {offset}-") or "/" not in content_range:
            raise ConversionError(f"the server answered a resume from byte {offset} with {content_range!r}")
        total = content_range.rsplit("/", 1)[1]
        return int(total) if total.isdigit() else None
    length = response.headers.get("Content-Length")
    return int(length) if length and length.isdigit() else None


def download(url: str, target: Path, max_bytes: int, *, progress: bool = True, timeout: float = 60) -> Path:
    """``url`` into ``target`` (kept from an earlier run when it is complete). Bytes arrive in ``target.part``; an
    interrupted download leaves that, and the next call resumes it with a Range request. Refused in one line: a
    size over ``max_bytes`` (read off the headers before the body), a body longer or shorter than announced."""
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    offset = part.stat().st_size if part.is_file() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={offset}-"} if offset else {})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416 and offset:  # nothing after our offset: a stale part; start again
            part.unlink()
            return download(url, target, max_bytes, progress=progress, timeout=timeout)
        raise ConversionError(f"{url}: HTTP {err.code} {err.reason}") from None
    except (urllib.error.URLError, OSError) as err:
        raise ConversionError(f"{url} could not be reached ({getattr(err, 'reason', err)})") from None
    with response:
        if response.status == 200 and offset:  # the server ignored the Range: start again
            offset = 0
        total = _total_from(response, offset)
        if total is not None and total > max_bytes:
            raise ConversionError(
                f"{url} is {total / 2**20:.0f} MB, above the limit of {max_bytes / 2**20:.0f} MB; not downloaded"
            )
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=total, initial=offset, unit="B", unit_scale=True, desc=target.name, leave=False)
        received = offset
        try:
            with open(part, "ab" if offset else "wb") as f:
                while chunk := response.read(1 << 20):
                    received += len(chunk)
                    if received > (total if total is not None else max_bytes):
                        f.close()
                        part.unlink()
                        limit = "the size announced" if total is not None else f"the limit of {max_bytes >> 20} MB"
                        raise ConversionError(f"{url} sent more than {limit}; refused and deleted")
                    f.write(chunk)
                    if bar is not None:
                        bar.update(len(chunk))
        except (OSError, http.client.HTTPException) as err:
            raise ConversionError(
                f"{url}: the download stopped at {received:,} bytes ({err}); run the same command again to resume it"
            ) from None
        finally:
            if bar is not None:
                bar.close()
    if total is not None and received != total:
        raise ConversionError(
            f"{url}: the download stopped at {received:,} of {total:,} bytes; run the same command again to resume it"
        )
    os.replace(part, target)
    return target


def fetch(model: ZooModel, *, mirror: str | None = None, folder=None, progress: bool = True) -> tuple[Path, str]:
    """The downloaded file of ``model`` (the tar for CUT's) and the URL it came from."""
    url = mirrored(model.url, mirror)
    limit = MAX_TAR_BYTES if model.member else MAX_MODEL_BYTES
    limit = {TURBO: MAX_TURBO_BYTES, PIX2PIX: MAX_PIX2PIX_BYTES}.get(model.method, limit)
    return download(url, cache_dir(folder) / model.cache_name, limit, progress=progress), url


def read_member(tar_path: Path, member: str) -> bytes:
    """The bytes of the one member of a tar whose name is ``member`` or ends with ``/member``, read in memory;
    every other member is skipped unread."""
    try:
        with tarfile.open(tar_path, mode="r:*") as tar:
            for count, info in enumerate(tar):
                if count >= MAX_MEMBERS:
                    break
                if info.name == member or info.name.endswith("/" + member):
                    if not info.isreg():
                        raise ConversionError(f"{tar_path.name}: {info.name} is not a regular file")
                    if info.size > MAX_MODEL_BYTES:
                        raise ConversionError(
                            f"{tar_path.name}: {info.name} is {info.size >> 20} MB, above the "
                            f"limit of {MAX_MODEL_BYTES >> 20} MB"
                        )
                    return tar.extractfile(info).read()
    except (tarfile.TarError, OSError, EOFError) as err:
        raise ConversionError(f"{tar_path.name} is not a readable tar ({err})") from None
    raise ConversionError(f"{tar_path.name} holds no {member}")
