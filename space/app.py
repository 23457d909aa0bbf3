"""CycleGAN Space: translate an image both ways and see the round trip.

    python space/app.py                                   # the bundled MNIST 6 <-> 9 pair, offline
    cyclegan-hub serve --model user/mnist-6to9 --model user/mnist-9to6
    CYCLEGAN_MODELS="user/mnist-6to9,user/mnist-9to6" python space/app.py

GRADIO_SERVER_NAME / GRADIO_SERVER_PORT choose the address. From code:

    from gradio_client import Client, handle_file
    nine_png, six_png, error = Client("http://127.0.0.1:7860/").predict(handle_file("six.png"), "6 -> 9", api_name="/translate")
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import gradio as gr
from PIL import Image

from cyclegan_hub.hub import load_generator
from cyclegan_hub.serving import PairTranslator

HERE = Path(__file__).resolve().parent
BUNDLED = [HERE / "models" / "mnist-6to9", HERE / "models" / "mnist-9to6"]
EXAMPLES = HERE / "examples"

# Small images (28x28 digits) are shown enlarged, with crisp pixels.
CSS = ".digit img { width: 100%; height: 100%; object-fit: contain; image-rendering: pixelated; }"

ABOUT = """
**CycleGAN** learns to translate between two image domains from examples that are *not* paired: a generator
G turns domain A into domain B, a second one F turns B back into A. Discriminators push each output to look like
its target domain, and a *cycle-consistency* loss asks that F(G(x)) gives x back, so that G changes what makes an
image an A into what makes it a B, and keeps the rest. Below: the translation, and the round trip through both
generators with its error. ([paper](https://arxiv.org/abs/1703.10593), [code](https://github.com/cyclegan-hub/cyclegan-hub))
"""


class ImageFile(gr.Image):
    """gr.Image that hands the uploaded file to cyclegan-hub untouched: gradio's own preprocessing opens it with
    PIL first, so an empty, corrupt or oversized upload would fail there with a generic message."""

    def get_block_name(self) -> str:
        return "image"  # the same front end as gr.Image

    def preprocess(self, payload):
        if payload is not None and payload.path and not (payload.url or "").startswith("data:"):
            return payload.path
        return super().preprocess(payload)


def model_names() -> list[str]:
    """CYCLEGAN_MODELS if set, else the bundled pair beside this file, else the `models:` of this Space's card."""
    names = [n.strip() for n in os.environ.get("CYCLEGAN_MODELS", "").split(",") if n.strip()]
    if not names and all(p.is_dir() for p in BUNDLED):
        return [str(p) for p in BUNDLED]
    if not names and (HERE / "README.md").is_file():
        from huggingface_hub import SpaceCard

        names = list(SpaceCard.load(HERE / "README.md").data.get("models") or [])
    if len(names) != 2:
        raise SystemExit(f"found {len(names)} model(s); set CYCLEGAN_MODELS to a forward and a reverse one, comma-separated")
    return names


# Load once at start: both generators of the pair, and a batching translator in front of them.
PAIR = PairTranslator(*(load_generator(name) for name in model_names()), max_batch=16)
DIRECTIONS = list(PAIR.directions)


def translate(image: str | None, direction: str) -> tuple[Image.Image, Image.Image, str]:
    """(image file, direction) -> (translated PNG, reconstruction PNG, cycle error)."""
    try:
        result = PAIR.translate(image, direction)
    except (ValueError, FileNotFoundError) as err:
        # name the file as the user knows it, not by the server's upload path
        message = str(err).replace(str(image), Path(image).name) if isinstance(image, str) else str(err)
        raise gr.Error(message, print_exception=False) from None
    return own_file(result.translated), own_file(result.reconstructed), f"{result.cycle_error:.4f}"


def own_file(image: Image.Image) -> Image.Image:
    """Gradio stores an output under a hash of its PNG bytes and writes the file again when another request gives
    the same image, while the first response may still be downloading it (gradio-app/gradio#8878: truncated
    downloads). A PNG text chunk unique to this response gives it a file of its own."""
    image.info["cyclegan-hub-response"] = uuid.uuid4().hex
    return image


def use_drawing(sketch: dict | None) -> str | None:
    """The sketchpad's composite becomes the input image."""
    return sketch.get("composite") if sketch else None


with gr.Blocks(title="CycleGAN") as demo:
    gr.Markdown(f"# CycleGAN: {' / '.join(DIRECTIONS)}")
    gr.Markdown(ABOUT)
    with gr.Row():
        with gr.Column():
            with gr.Tab("Image"):
                source = ImageFile(label="Input", type="filepath", sources=["upload", "clipboard", "webcam"],
                                   image_mode=None, format="png", height=280, elem_classes="digit")
            with gr.Tab("Draw"):
                sketch = gr.Sketchpad(label="Pick the brush, draw, then press Translate", type="filepath", image_mode="RGB",
                                      canvas_size=(280, 280), brush=gr.Brush(default_size=18, colors=["#000000"]))
            direction = gr.Radio(DIRECTIONS, value=DIRECTIONS[0], label="Direction")
            button = gr.Button("Translate", variant="primary")
        with gr.Column():
            translated = gr.Image(label="Translated", format="png", type="pil", interactive=False, height=280,
                                  elem_classes="digit")
            reconstructed = gr.Image(label="Round trip (reconstruction)", format="png", type="pil", interactive=False,
                                     height=280, elem_classes="digit")
            cycle_error = gr.Textbox(label="Cycle error: mean |F(G(x)) - x|, pixels in [0, 1]", interactive=False)
    sketch.change(use_drawing, sketch, source, api_name=False, show_progress="hidden")
    button.click(translate, [source, direction], [translated, reconstructed, cycle_error], api_name="translate",
                 concurrency_limit=16)
    examples = sorted(EXAMPLES.glob("*.png")) if EXAMPLES.is_dir() else []
    if examples:
        # examples/<domain>-<name>.png is translated from <domain>
        start = {d.split(" -> ")[0]: d for d in DIRECTIONS}
        gr.Examples([[str(p), start.get(p.stem.split("-")[0], DIRECTIONS[0])] for p in examples],
                    [source, direction], [translated, reconstructed, cycle_error], fn=translate,
                    cache_examples=True, cache_mode="lazy")

# A bounded queue: at most 64 waiting requests; PAIR batches the ones that run together.
demo.queue(max_size=64, default_concurrency_limit=16)

if __name__ == "__main__":
    demo.launch(show_error=True, css=CSS)
