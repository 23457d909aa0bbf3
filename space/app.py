"""CycleGAN Space: translate an image both ways with any of the pairs it serves, and see the round trip.

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
