"""What the Space's Draw tab gives the shipped pair: a fixed sheet of drawn 6s and 9s, translated both ways.

    python benchmarks/drawn_digits.py --output benchmarks/drawn-digits.png

The drawings are generated, not picked: six glyph shapes of each digit (closed and open loops, curved, straight and
hooked tails, a slanted one, and the typeface glyph of Pillow's default font) at three brush widths (12, 18 and 26
pixels on the Space's 280x280 canvas: the Draw tab's brush is 18), black on white as the sketchpad draws them.
Each goes through the app's own path (``frame_like_mnist``, then the pair) and the shipped classifier reads the
translation. The sheet shows, per drawing: the drawing as framed, its translation and its round trip.
"""

from __future__ import annotations

import argparse
import json
import math

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from cyclegan_hub.hub.repos import load_generator
from cyclegan_hub.io import imaging
from cyclegan_hub.models.mnist_classifier import classify_digits
from cyclegan_hub.serving.pairs import frame_like_mnist

from common import ROOT, machine

CANVAS = 280
WIDTHS = (12, 18, 26)


def _arc(cx, cy, rx, ry, start, end, steps=40):
    return [
        (cx + rx * math.cos(math.radians(a)), cy + ry * math.sin(math.radians(a)))
        for a in np.linspace(start, end, steps)
    ]


def six_strokes(style: int) -> list[list[tuple[float, float]]]:
    """A 6 as polylines on the canvas: a loop at the bottom, a tail rising to the top right."""
    c = CANVAS / 2
    if style == 0:  # closed loop, curved tail
        return [_arc(c, c + 45, 55, 50, 0, 360), _arc(c + 70, c + 40, 125, 150, 180, 265)]
    if style == 1:  # straight tail
        return [_arc(c, c + 45, 55, 50, 0, 360), [(c - 52, c + 40), (c + 25, c - 110)]]
    if style == 2:  # open loop, one stroke from the top
        return [[(c + 40, c - 110), *_arc(c + 5, c + 40, 60, 55, 225, 225 + 330)]]
    if style == 3:  # small loop, long hooked tail
        return [_arc(c - 5, c + 60, 40, 38, 0, 360), _arc(c + 40, c + 30, 85, 140, 170, 290)]
    if style == 4:  # slanted
        loop = _arc(c + 10, c + 45, 50, 48, 0, 360)
        return [loop, [(c - 38, c + 35), (c - 10, c - 40), (c + 35, c - 105)]]
    raise ValueError(style)


def drawing(digit: int, style: int, width: int) -> Image.Image:
    """Black strokes on white, as the sketchpad gives them. A 9 is drawn as its own glyph (loop on top, tail down)."""
    canvas = Image.new("RGB", (CANVAS, CANVAS), "white")
    draw = ImageDraw.Draw(canvas)
    if style == 5:  # the typeface glyph
        font = ImageFont.load_default(size=230)
        draw.text((CANVAS / 2, CANVAS / 2), str(digit), fill="black", font=font, anchor="mm", stroke_width=width // 6)
        return canvas
    for line in six_strokes(style):
        points = [(CANVAS - x, CANVAS - y) for x, y in line] if digit == 9 else line
        draw.line(points, fill="black", width=width, joint="curve")
        for x, y in (points[0], points[-1]):
            draw.ellipse((x - width / 2, y - width / 2, x + width / 2, y + width / 2), fill="black")
    return canvas


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=str(ROOT / "space" / "models" / "mnist-6to9"))
    p.add_argument("--reverse-model", default=str(ROOT / "space" / "models" / "mnist-9to6"))
    p.add_argument("--output", default=str(ROOT / "benchmarks" / "drawn-digits.png"))
    p.add_argument("--scale", type=int, default=3, help="pixels per MNIST pixel in the sheet")
    args = p.parse_args()
    g, f = load_generator(args.model), load_generator(args.reverse_model)
    rows, correct, total = [], {6: 0, 9: 0}, {6: 0, 9: 0}
    for digit, forward, backward in ((6, g, f), (9, f, g)):
        for width in WIDTHS:
            tiles = []
            for style in range(6):
                framed = frame_like_mnist(drawing(digit, style, width), 28)
                translated, round_trip = forward.translate(framed, return_reconstruction_with=backward)
                x = imaging.to_network(torch.from_numpy(np.array(translated)).float()[None, None] / 255, (-1, 1))
                correct[digit] += int(classify_digits(x)[0]) == 15 - digit
                total[digit] += 1
                tiles += [framed, translated, round_trip, Image.new("L", (4, 28), 128)]
            rows.append(np.concatenate([np.asarray(t) for t in tiles[:-1]], axis=1))
    sheet = Image.fromarray(np.concatenate([np.pad(r, ((2, 2), (0, 0)), constant_values=128) for r in rows]))
    sheet = sheet.resize((sheet.width * args.scale, sheet.height * args.scale), Image.Resampling.NEAREST)
    sheet.save(args.output)
    result = {
        "benchmark": "drawn_digits",
        "drawings_per_digit": total[6],
        "read_as_target": {"6 -> 9": correct[6] / total[6], "9 -> 6": correct[9] / total[9]},
        "sheet": args.output,
        "machine": machine(),
    }
    print(json.dumps(result, indent=2))
    print(
        f"drawn digits read as the target: 6 -> 9 {correct[6]}/{total[6]}, 9 -> 6 {correct[9]}/{total[9]}; "
        f"sheet: {args.output} (rows: 6s then 9s, brush {', '.join(map(str, WIDTHS))}; each: drawing | translated | round trip)"
    )


if __name__ == "__main__":
    main()
