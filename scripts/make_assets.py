"""Regenerate the evaluation assets shipped in src/semguard/data/assets/ (run once, committed).

photos/: 256x256 crops of scikit-image's bundled colour photographs (none used in training).
fashion_mnist_test_2000.npz: the first 2000 images/labels of the Fashion-MNIST test split
(needs Debian's dataset-fashion-mnist or a download; the training split is never shipped).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import skimage.data as skd
from PIL import Image

OUT = Path(__file__).resolve().parents[1] / "src" / "semguard" / "data" / "assets" / "photos"

# (name, loader, downscale factor, (top, left) of the 256x256 crop after downscaling)
CROPS = [
    ("astronaut", skd.astronaut, 0.5, (0, 0)),
    ("chelsea", skd.chelsea, 1.0, (22, 97)),
    ("coffee", skd.coffee, 0.64, (0, 64)),
    ("rocket", skd.rocket, 0.6, (0, 64)),
    ("motorcycle", lambda: skd.stereo_motorcycle()[0], 0.6, (20, 100)),
    ("astronaut_face", skd.astronaut, 1.0, (30, 150)),
    ("coffee_detail", skd.coffee, 1.0, (100, 150)),
]


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, load, scale, (top, left) in CROPS:
        im = Image.fromarray(np.asarray(load())[..., :3])
        if scale != 1.0:
            im = im.resize((round(im.width * scale), round(im.height * scale)), Image.Resampling.LANCZOS)
        crop = im.crop((left, top, left + 256, top + 256))
        assert crop.size == (256, 256), (name, im.size)
        crop.save(OUT / f"{name}.png", optimize=True)
        print(name, im.size, "->", OUT / f"{name}.png")
    from semguard.data.idx import find_idx_files, read_idx

    paths = find_idx_files("fashion-mnist")
    x, y = read_idx(paths["test_x"])[:2000], read_idx(paths["test_y"])[:2000]
    np.savez_compressed(OUT.parent / "fashion_mnist_test_2000.npz", images=x, labels=y)
    print("fashion-mnist test subset", x.shape, "->", OUT.parent / "fashion_mnist_test_2000.npz")
    return 0


if __name__ == "__main__":
    sys.exit(main())
