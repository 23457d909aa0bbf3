"""The Gradio app of the Space: any number of CycleGAN pairs behind a picker, both directions, the round trip; a
one-way model (pix2pix, CUT) beside them, input -> output; a short video in its own tab.

``build_demo(pairs)`` makes the Blocks; ``space/app.py`` (what a Space runs, and what ``deploy-space`` uploads: the
text of ``SPACE_SCRIPT``) and ``cyclegan-hub serve`` call it. Needs the ``space`` extra (gradio).

What a request may do is decided here, not by the payload: an image is read only when Gradio's upload wrote it
(a path inside Gradio's upload folder, whatever the request says about it), bounded in bytes and pixels before it is
decoded (``ServingLimits``; a video by its container's headers before a frame is decoded); each client gets its fair share of the workers (``clients.FairShare``: a few jobs at a
time, charged by their pixels and model, served round-robin), and the temporary files stay under a total size and
an age (``uploads.TempCap``).
"""

from __future__ import annotations

import asyncio
import base64
import html
import io
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
from PIL import Image

from ..io import imaging
from . import connections
from .clients import FairShare, Refused, ShareLimits, client_identity, trusted_hops
from .guard import RequestGuard, RequestLimits
from .pairs import PairTranslator, ServingLimits, load_pairs
from .uploads import TempCap, refused_upload, upload_folder

#: What ``space/app.py`` holds and ``deploy-space`` uploads as the Space's app.py.
SPACE_SCRIPT = '''"""CycleGAN Space: translate an image both ways with any of the pairs it serves, and see the round trip.

    python app.py                                             # the bundled MNIST 6 <-> 9 pair, offline
    CYCLEGAN_MODELS="user/horse2zebra;user/a,user/b" python app.py   # more pairs: forward[,reverse], ';' between pairs

A model with no reverse (pix2pix, CUT, or one whose twin is not found) is served one way, input -> output.
From code: Client(url).predict(handle_file("six.png"), "6 -> 9", api_name="/translate") returns the translated PNG,
the round trip PNG and the cycle error (for a one-way model: None and ""); api_name="/translate_video" takes a short
video and returns the translated video and what was done. GRADIO_SERVER_NAME / GRADIO_SERVER_PORT choose the address.
"""

from pathlib import Path

from cyclegan_hub.serving.app import build_demo, launch, pair_specs

HERE = Path(__file__).resolve().parent
demo = build_demo(pair_specs(HERE), examples=HERE / "examples")

if __name__ == "__main__":
    launch(demo)
'''

# Small images (28x28 digits) are shown enlarged with crisp pixels; photos are shown smoothly.
CSS = ".digit img { width: 100%; height: 100%; object-fit: contain; image-rendering: pixelated; }"

ABOUT = """
**CycleGAN** learns to translate between two image domains from examples that are *not* paired: a generator
G turns domain A into domain B, a second one F turns B back into A. Discriminators push each output to look like
its target domain, and a *cycle-consistency* loss asks that F(G(x)) gives x back, so that G changes what makes an
image an A into what makes it a B, and keeps the rest. Below: the translation, and the round trip through both
generators with its error. ([paper](https://arxiv.org/abs/1703.10593), [code](https://github.com/cyclegan-hub/cyclegan-hub))
"""

ONE_WAY_ABOUT = """
A **one-way** model (pix2pix, CUT) has no second generator to go back with: it shows the translation only.
"""

#: What the cycle error box says for a one-way model: there is no round trip to measure (the API returns "").
NO_ROUND_TRIP = ""

#: Uploads and outputs older than an hour are deleted, every half hour (``TempCap`` also keeps their total bounded).
DELETE_CACHE = (1800, 3600)
#: Events the queue holds (each waits in ``FairShare`` without a thread; a client may have a few).
QUEUE_SIZE = 256
NOT_UPLOADED = "the image must be uploaded with this request (only files that Gradio's upload wrote are read)"


def uploaded_path(path: str | None) -> bool:
    """Whether ``path`` is a file that Gradio's upload (or Gradio itself) wrote: inside its upload folder, reached
    through no link. The same rule Gradio applies to a payload that says it is a file; here it holds whatever the
    payload says."""
    from gradio.utils import get_upload_folder

    if not path or not isinstance(path, str):
        return False
    folder, real = os.path.realpath(get_upload_folder()), os.path.realpath(path)
    return real.startswith(folder + os.sep) and os.path.isfile(real)


class UploadedImage(gr.Image):
    """gr.Image that hands the uploaded file to cyclegan-hub's decoder untouched (Gradio's own preprocessing would
    open it with PIL first, unbounded and with a generic message), and only a file Gradio's upload wrote."""

    limits = ServingLimits()  # set per app by build_demo (not a constructor argument: those are sent to the page)

    def get_block_name(self) -> str:
        return "image"  # the same front end as gr.Image

    def preprocess(self, payload):
        if payload is None:
            return None
        url = payload.url or ""
        if url.startswith("data:"):  # an inline image (a paste): decoded by us, bounded
            header, _, encoded = url.partition(",")
            if len(encoded) > self.limits.max_bytes * 4 // 3 + 4:
                raise gr.Error(f"the image is larger than {self.limits.max_bytes // 2**20} MB", print_exception=False)
            try:
                return base64.b64decode(encoded, validate=True) if header.endswith(";base64") else None
            except ValueError:
                raise gr.Error("the inline image is not valid base64", print_exception=False) from None
        if not uploaded_path(payload.path):
            why = refused_upload(payload.path) if isinstance(payload.path, str) else None
            raise gr.Error(why or NOT_UPLOADED, print_exception=False)
        return payload.path


class DirectionRadio(gr.Radio):
    """The direction, checked by the translator (which names the valid ones) rather than against the choices the
    picker shows now: any pair's direction can be asked for through the API."""

    def get_block_name(self) -> str:
        return "radio"

    def preprocess(self, payload):
        if not isinstance(payload, str) or len(payload) > 300:
            raise gr.Error("the direction must be a text such as '6 -> 9'", print_exception=False)
        return payload


class UploadedVideo(gr.Video):
    """gr.Video that hands the uploaded file on untouched (Gradio's own preprocessing may run FFmpeg on it to
    change its format: unbounded), and only a file Gradio's upload wrote; its headers are checked by the job."""

    def get_block_name(self) -> str:
        return "video"

    def preprocess(self, payload):
        if payload is None:
            return None
        if not uploaded_path(payload.path):
            why = refused_upload(payload.path) if isinstance(payload.path, str) else None
            raise gr.Error(why or NOT_UPLOADED.replace("image", "video", 1), print_exception=False)
        return payload.path


#: Layers a drawing may have (the pad makes one; a request may not send thousands).
MAX_LAYERS = 4


#: The most pixels a drawing may have (the pad is 280x280).
MAX_DRAWING_PIXELS = 4_000_000


class BoundedSketchpad(gr.Sketchpad):
    """The drawing pad, whose only use is its composite: the layers are counted, never decoded; the composite goes
    through the image gate (formats, bytes, pixels, structure), is flattened on white as the pad shows it, and is
    handed on as a file in the upload folder (translated later like any upload)."""

    limits = ServingLimits()  # set per app by build_demo

    def get_block_name(self) -> str:
        return "imageeditor"

    def preprocess(self, payload):
        if payload is None:
            return None
        data = payload
        if getattr(payload, "id", None) is not None:  # the page streams a drawing's images ahead of the event
            data = self.blob_storage.get(payload.id)
            if data is None:
                return None
        layers = data.layers or []
        if len(layers) > MAX_LAYERS:
            raise gr.Error(f"a drawing may have at most {MAX_LAYERS} layers, not {len(layers)}", print_exception=False)
        composite = data.composite
        if composite is None:
            return None
        if isinstance(composite, (bytes, bytearray, memoryview)):
            source = bytes(composite)
        else:
            source = getattr(composite, "path", None)
            if not uploaded_path(source):
                raise gr.Error(NOT_UPLOADED, print_exception=False)
        try:
            image = imaging.open_image(
                source,
                max_pixels=min(self.limits.max_pixels, MAX_DRAWING_PIXELS),
                max_bytes=self.limits.max_bytes,
                formats=imaging.WEB_FORMATS,
            )
        except (ValueError, FileNotFoundError) as err:
            message = str(err).replace(source, Path(source).name) if isinstance(source, str) else str(err)
            raise gr.Error(f"the drawing: {message}", print_exception=False) from None
        if "A" in image.getbands() or "transparency" in image.info:  # strokes on a transparent canvas: on white
            image = Image.alpha_composite(Image.new("RGBA", image.size, "white"), image.convert("RGBA"))
        from gradio.utils import get_upload_folder

        folder = Path(get_upload_folder()) / uuid.uuid4().hex
        folder.mkdir(parents=True)
        image.convert("RGB").save(folder / "drawing.png")
        return {"composite": str(folder / "drawing.png")}


def as_text(text: str) -> str:
    """The one way a string from a model or a run (domain names, pair names, labels) reaches the page: as HTML
    text, for an HTML component. Every character is shown as it is; no element, link or image is made from it (a
    Markdown component would turn a URL in it into a link, whatever was escaped)."""
    return html.escape(text)


def own_file(image: Image.Image) -> Image.Image:
    """Gradio stores an output under a hash of its PNG bytes and writes the file again when another request gives
    the same image, while the first response may still be downloading it (gradio-app/gradio#8878: truncated
    downloads). A PNG text chunk unique to this response gives it a file of its own."""
    image.info["cyclegan-hub-response"] = uuid.uuid4().hex
    return image


def zero_gpu():
    """``spaces.GPU`` when the ``spaces`` package is installed (a Hugging Face Space; on ZeroGPU hardware it attaches
    a GPU for the call, elsewhere it does nothing), else None."""
    try:
        import spaces
    except ImportError:
        return None
    return getattr(spaces, "GPU", None)


def image_size(source) -> tuple[int, int] | None:
    """(width, height) from the header of an uploaded image or an inline one, without decoding it; None for
    anything else (the translation itself names the problem)."""
    if isinstance(source, bytes):
        source = io.BytesIO(source)
    elif not uploaded_path(source):
        return None
    try:
        return imaging.read_header(source, imaging.WEB_FORMATS)[1]
    except (ValueError, OSError):
        return None


def request_client(request: gr.Request | None, hops: int) -> str:
    """Who sent a queued event, as the Space's proxy gives it (``clients.client_identity``)."""
    if request is None:  # an example computed for the page's cache
        return "examples"
    host = request.client.host if request.client is not None else None
    return client_identity(request.headers.get("x-forwarded-for"), host, hops)


async def in_thread(work):
    """``work()`` on a worker thread; if the event is cancelled (the client left), the slot is held until the
    thread is done, so that what runs never exceeds what was admitted."""
    running = asyncio.get_running_loop().run_in_executor(None, work)
    try:
        return await asyncio.shield(running)
    except asyncio.CancelledError:
        await asyncio.wait([running])
        raise


def build_demo(
    pairs: list[PairTranslator] | list[str],
    *,
    examples: Path | None = None,
    limits: ServingLimits = ServingLimits(),
    share: ShareLimits = ShareLimits(),
) -> gr.Blocks:
    """The app for ``pairs`` (translators, or pair names for ``load_pairs``); the first is the default. ``share``:
    what one client may have queued, running and spent (``clients.FairShare``)."""
    if pairs and isinstance(pairs[0], str):
        pairs = load_pairs(pairs, limits=limits)
    if not pairs:
        raise ValueError("no pair to serve: name one (CYCLEGAN_MODELS, --pair, or the Space card's models)")
    by_direction = {label: pair for pair in pairs for label in pair.directions}
    by_name = {pair.name: pair for pair in pairs}
    on_gpu = heavy_on_gpu()
    fair, hops = FairShare(share), trusted_hops()
    temp = TempCap(upload_folder(), limits.temp_bytes, limits.temp_age)
    translate = make_translate(by_direction, fair, hops, temp, on_gpu)
    with gr.Blocks(title="CycleGAN", delete_cache=DELETE_CACHE) as demo:
        ui = build_layout(pairs, limits)
        translate_video = make_translate_video(by_direction, fair, hops, temp)
        wire_events(ui, pairs, translate, make_announce(by_direction), make_pick(by_name), translate_video)
        add_examples(ui, examples, by_direction, translate)
    # A bounded queue whose events go straight to the fair share, which admits a few per client and runs them
    # round-robin; each pair's translator batches the ones that run together.
    demo.queue(max_size=QUEUE_SIZE, default_concurrency_limit=16)
    demo.limits, demo.fair_share, demo.temp_cap = limits, fair, temp
    return demo


# ---- the page: its components, their events, the examples -------------------------------------------------------


@dataclass
class Components:
    """The components of the page that events read or write."""

    picker: gr.Dropdown
    source: UploadedImage
    sketch: BoundedSketchpad
    direction: DirectionRadio
    button: gr.Button
    translated: gr.Image
    reconstructed: gr.Image
    cycle_error: gr.Textbox
    ran_at: gr.HTML
    info: gr.State
    video: UploadedVideo
    video_button: gr.Button
    translated_video: gr.Video
    video_note: gr.HTML


def build_layout(pairs: list[PairTranslator], limits: ServingLimits) -> Components:
    """The page, made inside the Blocks: the title and the explanation; the pair picker (shown for more than one
    pair), the input (an image, or a drawing: for any model) and the direction; the translation, the round trip and
    its error (hidden while a one-way model is picked)."""
    first = pairs[0]
    titles = " · ".join(pair.name for pair in pairs)
    classes = ["digit"] if first.digits else []
    round_trip = not first.one_way
    gr.HTML(f"<h1>CycleGAN: {as_text(titles)}</h1>")
    gr.Markdown(ABOUT + (ONE_WAY_ABOUT if any(pair.one_way for pair in pairs) else ""))
    with gr.Row():
        with gr.Column():
            label = "Pair" if not any(pair.one_way for pair in pairs) else "Model"
            picker = gr.Dropdown([pair.name for pair in pairs], value=first.name, label=label, visible=len(pairs) > 1)
            with gr.Tab("Image"):
                source = UploadedImage(
                    label="Input",
                    type="filepath",
                    sources=["upload", "clipboard", "webcam"],
                    image_mode=None,
                    format="png",
                    height=280,
                    elem_classes=classes,
                )
                source.limits = limits
            with gr.Tab("Draw"):
                sketch = BoundedSketchpad(
                    label="Pick the brush, draw, then press Translate",
                    type="filepath",
                    image_mode="RGB",
                    canvas_size=(280, 280),
                    brush=gr.Brush(default_size=18, colors=["#000000"]),
                )
                sketch.limits = limits
            with gr.Tab("Video"):
                video = UploadedVideo(label="Input video", sources=["upload"], format=None, height=280)
                video_button = gr.Button("Translate video", variant="primary")
                translated_video = gr.Video(label="Translated video", format=None, interactive=False, height=280)
                video_note = gr.HTML("")
                gr.Markdown(
                    f"Videos of up to {limits.video_seconds:g} s, {limits.video_frames} frames and "
                    f"{limits.video_frame_side} pixels a side; frames are translated at up to {limits.video_side} "
                    "pixels (a digit pair: at its own size), and the sound is kept. Pick the direction below."
                )
            direction = DirectionRadio(list(first.directions), value=next(iter(first.directions)), label="Direction")
            button = gr.Button("Translate", variant="primary")
            gr.Markdown(
                f"Photos are translated at up to {limits.photo_side} pixels on the longer side (on a CPU: "
                f"a few seconds); uploads up to {limits.max_bytes // 2**20} MB and "
                f"{limits.max_pixels / 1e6:.0f} megapixels."
            )
        with gr.Column():
            translated = gr.Image(
                label="Translated", format="png", type="pil", interactive=False, height=280, elem_classes=classes
            )
            reconstructed = gr.Image(
                label="Round trip (reconstruction)",
                format="png",
                type="pil",
                interactive=False,
                height=280,
                elem_classes=classes,
                visible=round_trip,
            )
            cycle_error = gr.Textbox(
                label="Cycle error: mean |F(G(x)) - x|, pixels in [0, 1]", interactive=False, visible=round_trip
            )
            ran_at = gr.HTML("")  # the size a translation ran at, or a heavy pair's expected time
    info = gr.State("")  # the size a request ran at: shown below, kept out of the API's outputs
    return Components(
        picker,
        source,
        sketch,
        direction,
        button,
        translated,
        reconstructed,
        cycle_error,
        ran_at,
        info,
        video,
        video_button,
        translated_video,
        video_note,
    )


def wire_events(ui: Components, pairs: list[PairTranslator], translate, announce, pick, translate_video) -> None:
    """What the page does: picking a pair sets its directions and styles; a drawing becomes the input; a heavy
    pair's expected time is shown as soon as there is an image; Translate (the API's ``/translate``) runs, then
    shows the size it ran at."""
    ui.picker.change(
        pick,
        ui.picker,
        [ui.direction, ui.source, ui.translated, ui.reconstructed, ui.cycle_error],
        api_name=False,
        show_progress="hidden",
    )
    ui.sketch.change(use_drawing, ui.sketch, ui.source, api_name=False, show_progress="hidden")
    if any(pair.heavy for pair in pairs):  # the time a heavy pair will take, as soon as the image is there
        for trigger in (ui.source.change, ui.direction.change):
            trigger(announce, [ui.source, ui.direction], ui.ran_at, api_name=False, show_progress="hidden")
    ui.button.click(
        translate,
        [ui.source, ui.direction],
        [ui.translated, ui.reconstructed, ui.cycle_error, ui.info],
        api_name="translate",
        concurrency_limit=QUEUE_SIZE,  # events wait in the fair share (async, no thread), not in Gradio's queue
    ).then(lambda note: note, ui.info, ui.ran_at, api_name=False, show_progress="hidden")
    ui.video_button.click(
        translate_video,
        [ui.video, ui.direction],
        [ui.translated_video, ui.video_note],
        api_name="translate_video",
        concurrency_limit=QUEUE_SIZE,
    )


def add_examples(ui: Components, examples: Path | None, by_direction: dict, translate) -> None:
    """The images of ``examples``: ``<domain>-<name>.png`` is translated from ``<domain>``, by the first pair that
    starts there; translated once, when first asked for, and cached."""
    files = sorted(examples.glob("*.png")) if examples is not None and examples.is_dir() else []
    if not files:
        return
    start = {label.split(" -> ")[0]: label for label in reversed(list(by_direction))}
    rows = [[str(p), start[p.stem.split("-")[0]]] for p in files if p.stem.split("-")[0] in start]
    if rows:
        gr.Examples(
            rows,
            [ui.source, ui.direction],
            [ui.translated, ui.reconstructed, ui.cycle_error, ui.info],
            fn=translate,
            cache_examples=True,
            cache_mode="lazy",
        )


# ---- the callbacks, each made from what it needs ------------------------------------------------------------------


def heavy_on_gpu():
    """A heavy pair's (one-step diffusion) translation inside ``spaces.GPU`` where the package is there: on
    ZeroGPU hardware the call gets a GPU, elsewhere it is the plain call. None without the package."""
    gpu = zero_gpu()
    return gpu(lambda pair, image, direction: pair.translate(image, direction, direct=True)) if gpu else None


def expected_time(pair: PairTranslator, size: tuple[int, int] | None) -> str:
    """What a heavy pair on a CPU will cost for an image of ``size``, said before it starts ('' otherwise)."""
    seconds = pair.estimate(size) if pair.heavy and size else None
    if seconds is None:
        return ""
    return f"This one-step diffusion pair runs on the CPU here: about {seconds:.0f} s for this image."


def make_announce(by_direction: dict[str, PairTranslator]):
    """The callback that says what a heavy pair will cost for the image there ('' for any other pair)."""

    def announce(image, direction: str) -> str:
        pair = by_direction.get(direction)
        return expected_time(pair, image_size(image)) if pair is not None and pair.heavy else ""

    return announce


def run_translation(pair: PairTranslator, image, direction: str, temp: TempCap, on_gpu):
    """One translation, on a worker thread: a heavy pair on the GPU when there is one, any other holding its
    upload in the temporary files' cap while it runs."""
    if pair.heavy and on_gpu is not None:
        return on_gpu(pair, image, direction)
    with temp.holding(image):
        return pair.translate(image, direction)


def make_translate(by_direction: dict[str, PairTranslator], fair: FairShare, hops: int, temp: TempCap, on_gpu):
    """The callback of Translate and of the API's ``/translate``, run in the client's fair share."""

    async def translate(image, direction: str, request: gr.Request, progress=gr.Progress()):
        """(image file, direction) -> (translated PNG, round trip PNG, cycle error), and the size it ran at. The
        shape is the same for every direction: a one-way model's (pix2pix, CUT: no reverse) gives None for the
        round trip and "" for the cycle error."""
        pair = by_direction.get(direction)
        if pair is None:
            raise gr.Error(
                f"unknown direction {direction!r}; valid: {', '.join(map(repr, by_direction))}", print_exception=False
            )

        size = image_size(image)  # from the header: what the job will cost, and what a heavy pair will take

        async def job():
            if not pair.digits:
                eta = expected_time(pair, size)
                progress(0.1, desc=eta or f"translating at up to {pair.limits.photo_side} px a side")
            return await in_thread(lambda: run_translation(pair, image, direction, temp, on_gpu))

        try:
            result = await fair.run(request_client(request, hops), pair.cost(size), job)
        except Refused as err:
            raise gr.Error(str(err), print_exception=False) from None
        except (ValueError, FileNotFoundError) as err:
            # name the file as the user knows it, never by the server's upload path
            message = str(err).replace(str(image), Path(image).name) if isinstance(image, str) else str(err)
            raise gr.Error(message, print_exception=False) from None
        width, height = result.size
        note = f"{as_text(direction)}: ran at {width}x{height} in {result.seconds:.2f} s"
        if result.reconstructed is None:  # one way: no round trip
            return own_file(result.translated), None, NO_ROUND_TRIP, note
        return own_file(result.translated), own_file(result.reconstructed), f"{result.cycle_error:.4f}", note

    return translate


def make_translate_video(by_direction: dict[str, PairTranslator], fair: FairShare, hops: int, temp: TempCap):
    """The callback of Translate video and of the API's ``/translate_video``, run in the client's fair share."""

    async def translate_video(video, direction: str, request: gr.Request, progress=gr.Progress()):
        """(video file, direction) -> (translated video file, what was done). The video is refused from its
        headers, in one line, before a frame is decoded (``PairTranslator.check_video``); it is charged to the
        client by its declared frames."""
        pair = by_direction.get(direction)
        try:
            if pair is None:
                raise ValueError(f"unknown direction {direction!r}; valid: {', '.join(map(repr, by_direction))}")
            info = await in_thread(lambda: pair.check_video(video, direction))
            folder = Path(upload_folder()) / uuid.uuid4().hex
            suffix = ".webm" if info.container == "matroska,webm" else ".mp4"  # what a browser plays
            output = folder / f"{Path(info.name).stem}-translated{suffix}"

            def on_frames(done: int, total: int | None) -> None:
                progress((done, total) if total else None, desc=f"{done} frames translated", unit="frames")

            def work():
                folder.mkdir()
                with temp.holding(video):
                    report = pair.translate_video(video, direction, output, on_frames)
                temp.note(output.stat().st_size)
                return report

            report = await fair.run(request_client(request, hops), pair.video_cost(info), lambda: in_thread(work))
        except Refused as err:
            raise gr.Error(str(err), print_exception=False) from None
        except (ValueError, FileNotFoundError) as err:
            message = str(err).replace(str(video), Path(video).name) if isinstance(video, str) else str(err)
            raise gr.Error(message, print_exception=False) from None
        return str(output), as_text(f"{direction}: {report.summary()}")

    return translate_video


def make_pick(by_name: dict[str, PairTranslator]):
    """The callback of the pair picker: the pair's directions, the first chosen, its style on the images, and the
    round trip and its error shown for a pair, hidden for a one-way model."""

    def pick(name: str):
        pair = by_name[name]
        directions = list(pair.directions)
        classes = ["digit"] if pair.digits else []
        round_trip = not pair.one_way
        return (
            gr.update(choices=directions, value=directions[0]),
            gr.update(elem_classes=classes),
            gr.update(elem_classes=classes),
            gr.update(elem_classes=classes, visible=round_trip),
            gr.update(visible=round_trip),
        )

    return pick


def use_drawing(sketch: dict | None) -> str | None:
    """The sketchpad's composite becomes the input image."""
    return sketch.get("composite") if sketch else None


def launch(
    demo: gr.Blocks,
    requests: RequestLimits = RequestLimits(),
    connection_limits: connections.ConnectionLimits | None = None,
    **kwargs,
) -> None:
    """Launch with the upload size limit of the app's ``ServingLimits``, ``RequestGuard`` in front of every route
    (body sizes, files per upload, a per-client quota, the queue-bypassing routes closed), bounded connections
    (``connections``: head and body timeouts, connections per address where no proxy stands in front) and the cap
    on temporary files running. Errors the app did not word itself reach the page as a plain "Error"."""
    from starlette.middleware import Middleware

    limits = getattr(demo, "limits", ServingLimits())
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    if connection_limits is None:
        behind_proxy = trusted_hops() > 0  # every connection comes from the proxy: count requests per client instead
        connection_limits = connections.ConnectionLimits(per_address=None if behind_proxy else 64)
    connections.install(connection_limits)
    _malformed_events_in_one_line()
    temp = getattr(demo, "temp_cap", None)
    if temp is not None:
        temp.start()
    app_kwargs = {"middleware": [Middleware(RequestGuard, limits=requests)]}
    demo.launch(show_error=False, css=CSS, max_file_size=limits.max_bytes, app_kwargs=app_kwargs, **kwargs)


def _malformed_events_in_one_line() -> None:
    """Gradio prints a traceback for every event whose payload fails its schema (anyone can send one): those are
    logged as one line; any other failure keeps its traceback."""
    import logging
    import sys
    import traceback

    import gradio.queueing
    from pydantic import ValidationError

    log = logging.getLogger("cyclegan_hub.serving")

    class Tracebacks:
        def __getattr__(self, name):
            return getattr(traceback, name)

        def print_exc(self, *args, **kwargs):
            err = sys.exc_info()[1]
            if isinstance(err, ValidationError):
                log.warning("an event's payload did not match its schema: %d error(s)", err.error_count())
            else:
                traceback.print_exc(*args, **kwargs)

    gradio.queueing.traceback = Tracebacks()


def pair_specs(here: Path | None = None) -> list[str]:
    """Which pairs a Space serves: the pairs bundled in ``here/models`` (MNIST 6 <-> 9 in this repo) first (a bundled
    model without a twin folder: served one way), then those of ``CYCLEGAN_MODELS`` ("forward[,reverse]" per pair,
    ';' between pairs; one model without a reverse found is served one way); with neither, the ``models:`` of
    ``here``'s Space card, in twos (forward, reverse), as ``deploy-space`` writes them."""
    from ..hub.repos import twin_repo_id

    specs, used = [], set()
    models = here / "models" if here is not None else None
    for folder in sorted(p for p in models.iterdir() if p.is_dir()) if models is not None and models.is_dir() else []:
        twin = folder.with_name(twin_repo_id(folder.name))
        if folder.name in used:
            continue
        if twin.is_dir():
            specs.append(f"{folder},{twin}")
            used |= {folder.name, twin.name}
        elif (folder / "config.json").is_file():  # one model alone: one way
            specs.append(str(folder))
            used.add(folder.name)
    extra = [s.strip() for s in os.environ.get("CYCLEGAN_MODELS", "").split(";") if s.strip()]
    if not specs and not extra and here is not None and (here / "README.md").is_file():
        from huggingface_hub import SpaceCard

        listed = list(SpaceCard.load(here / "README.md").data.get("models") or [])
        extra = [f"{listed[i]},{listed[i + 1]}" for i in range(0, len(listed) - 1, 2)]
    return specs + [s for s in extra if s not in specs]
