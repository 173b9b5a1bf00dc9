"""Named data sources for training and evaluation, registered in the ``dataset`` family.

Image sources return :class:`ImageSource` (uint8 training images, float validation images);
labelled sources return :class:`LabelledSource` (float images ``[N, C, H, W]`` and labels).
A path to a folder of images is accepted wherever an image source name is.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from semguard.data.images import ALIGN, center_crop, list_images, load_image
from semguard.data.photos import debian_photo_files, shipped_photos
from semguard.registry import available, build, register

__all__ = ["ImageSource", "LabelledSource", "image_source", "labelled_source"]


@dataclass(frozen=True)
class ImageSource:
    name: str
    train: list[Tensor]  # uint8 [3, H, W], any size (for random crops)
    val: list[Tensor]  # float [3, H, W] in [0, 1], H, W multiples of ALIGN (16)


@dataclass(frozen=True)
class LabelledSource:
    name: str
    train_x: Tensor  # float [N, C, H, W] in [0, 1]
    train_y: Tensor  # long [N]
    test_x: Tensor
    test_y: Tensor
    classes: tuple[str, ...]


def _eval_view(img: Tensor, side: int = 256) -> Tensor:
    h, w = img.shape[-2:]
    s = min(side, h - h % ALIGN, w - w % ALIGN)
    return center_crop(img, s).float() / 255.0


@register("dataset", "debian-photos")
def debian_photos() -> ImageSource:
    """Training photos from Debian packages; validation on two held-out OpenCV photos."""
    return ImageSource("debian-photos", [load_image(p) for p in debian_photo_files("train")],
                       [_eval_view(load_image(p)) for p in debian_photo_files("val")])


@register("dataset", "photos")
def photos() -> ImageSource:
    """The 256x256 evaluation photos shipped in the package (evaluation only: no training split)."""
    imgs = shipped_photos()
    return ImageSource("photos", [], list(imgs))


def image_folder(root: str | Path, *, val_every: int = 10) -> ImageSource:
    """Any folder of images: every ``val_every``-th file (sorted) is held out for validation."""
    files = list_images(root)
    val = [f for i, f in enumerate(files) if i % val_every == val_every - 1] or files[-1:]
    train = [f for f in files if f not in val] or files
    return ImageSource(str(root), [load_image(f) for f in train], [_eval_view(load_image(f)) for f in val])


def image_source(name_or_path: str) -> ImageSource:
    """A registered image source by name, or a folder path."""
    if name_or_path in available("dataset"):
        src = build("dataset", name_or_path)
        if isinstance(src, LabelledSource) and src.train_x.shape[1] == 3:
            # e.g. CIFAR-10 for DeepJSCC as in Bourtsoulatze et al.: images only, last 1000 held out
            u8 = (src.train_x * 255).round().to(torch.uint8)
            return ImageSource(src.name, list(u8[:-1000]), list(src.train_x[-1000:]))
        if not isinstance(src, ImageSource):
            raise ValueError(f"dataset {name_or_path!r} is not a set of RGB images "
                             f"({type(src).__name__}); choose one of the photo sets or a folder")
        return src
    p = Path(name_or_path).expanduser()
    if p.is_dir():
        return image_folder(p)
    raise FileNotFoundError(f"--data {name_or_path!r} is neither a dataset name "
                            f"({', '.join(available('dataset'))}) nor a folder of images")


def labelled_source(name: str, **kwargs: object) -> LabelledSource:
    src = build("dataset", name, **kwargs)
    if not isinstance(src, LabelledSource):
        raise ValueError(f"dataset {name!r} has no labels; choose a labelled dataset")
    return src
