"""Real small image data on disk for tests: scikit-learn's digits (1,797 8x8 images, 0..16) as
8-bit grayscale image files in class folders, or as x.npy / y.npy. Written fresh under tmp_path."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

SUFFIX = {"png": ".png", "jpg": ".jpg", "jpeg": ".jpg", "bmp": ".bmp"}


@lru_cache(maxsize=1)
def _digits():
    from sklearn.datasets import load_digits

    return load_digits()


def digits_pixels(scale: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 images (N, 8*scale, 8*scale), int64 targets): value*255//16, nearest-neighbour upscaled."""
    d = _digits()
    img = (d.images.astype(np.int64) * 255 // 16).astype(np.uint8)
    if scale > 1:
        img = img.repeat(scale, axis=1).repeat(scale, axis=2)
    return img, d.target.astype(np.int64)


def digits_split(n: int) -> np.ndarray:
    """True for the samples the 'splits' layout puts in test/: the last 20% by index."""
    return np.arange(n) >= n * 4 // 5


def write_digits_tree(root: Path, layout: str = "classes", fmt: str = "png", scale: int = 1) -> Path:
    """root/<digit>/<index>.png (layout 'classes') or root/{train,test}/<digit>/... ('splits');
    file i holds digits image i, named f'{i:04d}'."""
    from PIL import Image

    if layout not in ("classes", "splits"):
        raise ValueError(f"layout must be 'classes' or 'splits', not {layout!r}")
    img, y = digits_pixels(scale)
    test = digits_split(len(y)) if layout == "splits" else np.zeros(len(y), bool)
    root = Path(root)
    options = {"quality": 95} if SUFFIX[fmt] == ".jpg" else {"compress_level": 1}
    for i, (a, label) in enumerate(zip(img, y, strict=True)):
        part = ("test" if test[i] else "train") if layout == "splits" else ""
        folder = root / part / str(label)
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(a, "L").save(folder / f"{i:04d}{SUFFIX[fmt]}", **options)
    return root


def write_digits_npy(root: Path) -> tuple[Path, Path]:
    """x.npy (N, 1, 8, 8) float32 in [0, 1] and y.npy int64 under root."""
    d = _digits()
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    x_path, y_path = root / "x.npy", root / "y.npy"
    np.save(x_path, (d.images.astype(np.float32) / 16.0)[:, None])
    np.save(y_path, d.target.astype(np.int64))
    return x_path, y_path
