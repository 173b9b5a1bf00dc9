"""Natural photos reachable offline: training photos from Debian packages, and the evaluation
set shipped inside semguard (256x256 crops of scikit-image's bundled colour photos).

Training and evaluation never share a source image: the shipped evaluation photos come from
scikit-image, the training photos from Debian's ``plasma-workspace-wallpapers`` (the 11
photographs among them), ``opencv-doc`` (its natural photos) and ``mate-backgrounds`` (the 12
nature photographs).  Two OpenCV photos are held out for validation during training.  Each
package is optional: the photos of those installed are used.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import torch
from torch import Tensor

from semguard.data.images import list_images, load_image

__all__ = ["WALLPAPER_PHOTOS", "OPENCV_PHOTOS", "OPENCV_VALIDATION", "MATE_PHOTOS", "debian_photo_files",
           "shipped_photo_files", "shipped_photos", "skimage_photos", "MissingDataError"]

WALLPAPER_ROOT = Path("/usr/share/wallpapers")
OPENCV_ROOT = Path("/usr/share/doc/opencv-doc/examples/data")
MATE_ROOT = Path("/usr/share/backgrounds/mate/nature")

# the wallpapers that are photographs (the others are drawings/renders)
WALLPAPER_PHOTOS = ("BytheWater", "ColdRipple", "ColorfulCups", "DarkestHour", "EveningGlow",
                    "FallenLeaf", "Grey", "Kite", "OneStandsOut", "Path", "summer_1am")
OPENCV_PHOTOS = ("aero1.jpg", "aero3.jpg", "aloeL.jpg", "apple.jpg", "board.jpg", "building.jpg",
                 "butterfly.jpg", "fruits.jpg", "leuvenA.jpg", "messi5.jpg", "orange.jpg",
                 "squirrel_cls.jpg", "stuff.jpg", "graf1.png", "rubberwhale1.png", "smarties.png",
                 "left.jpg", "pic1.png", "pic3.png", "pic5.png")
OPENCV_VALIDATION = ("baboon.jpg", "home.jpg")
# mate-backgrounds: its nature folder is photographs (the abstract and desktop ones are renders)
MATE_PHOTOS = ("Aqua.jpg", "Blinds.jpg", "Dune.jpg", "FreshFlower.jpg", "Garden.jpg", "GreenMeadow.jpg",
               "LadyBird.jpg", "RainDrops.jpg", "Storm.jpg", "TwoWings.jpg", "Wood.jpg", "YellowFlower.jpg")


class MissingDataError(FileNotFoundError):
    """A dataset's files are not on this machine; the message says how to get them."""


def _largest(folder: Path) -> Path | None:
    files = [p for p in folder.glob("*") if p.suffix.lower() in (".jpg", ".png")]
    return max(files, key=lambda p: p.stat().st_size) if files else None


def debian_photo_files(split: str = "train") -> list[Path]:
    """Paths of the Debian-packaged training (``train``) or validation (``val``) photos."""
    if split not in ("train", "val"):
        raise ValueError(f"split must be 'train' or 'val', got {split!r}")
    files: list[Path] = []
    if split == "train":
        for name in WALLPAPER_PHOTOS:
            p = _largest(WALLPAPER_ROOT / name / "contents" / "images")
            if p is not None:
                files.append(p)
        files += [OPENCV_ROOT / n for n in OPENCV_PHOTOS if (OPENCV_ROOT / n).is_file()]
        files += [MATE_ROOT / n for n in MATE_PHOTOS if (MATE_ROOT / n).is_file()]
    else:
        files += [OPENCV_ROOT / n for n in OPENCV_VALIDATION if (OPENCV_ROOT / n).is_file()]
    if not files:
        raise MissingDataError(
            "no Debian photos found: install them with `apt-get install plasma-workspace-wallpapers "
            "opencv-doc mate-backgrounds`, or train on your own folder with `--data /path/to/images`")
    return files


def shipped_photo_files() -> list[Path]:
    """The evaluation photos shipped in the package (256x256 PNG)."""
    root = resources.files("semguard.data") / "assets" / "photos"
    return list_images(Path(str(root)))


def shipped_photos() -> Tensor:
    """The shipped evaluation photos as float ``[N, 3, 256, 256]`` in [0, 1]."""
    return torch.stack([load_image(p) for p in shipped_photo_files()]).float() / 255.0


def skimage_photos(*names: str) -> list[Tensor]:
    """scikit-image's bundled colour photos by name (e.g. ``"astronaut"``, ``"coffee"``) as float
    ``[3, H, W]`` in [0, 1].  The shipped evaluation set is cut from some of them: small studies
    that train on these must keep their own split (see ``scripts/make_assets.py``)."""
    import numpy as np
    import skimage.data as data

    out = []
    for name in names:
        fn = getattr(data, name, None)
        if fn is None:
            raise ValueError(f"scikit-image has no bundled photo named {name!r}")
        img = np.ascontiguousarray(fn())
        if img.ndim != 3 or img.shape[2] < 3:
            raise ValueError(f"scikit-image's {name!r} is not a colour photo (shape {img.shape})")
        out.append(torch.from_numpy(img[..., :3].copy()).permute(2, 0, 1).float() / 255.0)
    return out
