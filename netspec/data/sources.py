"""Sample sets a DataLoader worker reads one sample at a time: a folder of images, a .npy array.

  open_image_folder  root/<class>/<image> (Keras, torchvision ImageFolder), or root/train/<class>/...
                     with optional val/ (valid/, validation/) and test/ beside it
  open_arrays        x.npy read a row at a time (never whole) with a small labels .npy beside it

Both give a Source: ImageFiles or ArrayFile per split. Those hold numpy arrays only (no Python
list of str per sample, which forked workers would copy page by page as refcounts change) and
pickle cheaply: an ArrayFile opens its file again in each process. The folder scan reads each
file's header only (size and mode, no pixels), so every fact a run needs before training (classes,
image sizes, a colour image where 1 channel is declared, a file that is no image) is known up
front; a body that fails to decode is a DataError at load(), naming the file.

numpy and the standard library only at import: torch, torchvision and Pillow load on first use.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import tokenize
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..record import factory, record
from ..runtime.datasets import NUMERIC, DataError, check_bytes, check_headers, class_labels, read_arrays, read_headers

if TYPE_CHECKING:
    from collections.abc import Callable

    import torch

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
SPLIT_NAMES = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}
_TARGET_MODE = {1: "L", 3: "RGB", 4: "RGBA"}  # Pillow's mode for each declared channel count
_GRAY_MODES = {"1", "L", "LA"}
_COLOUR_MODES = {"RGB", "RGBA"}
_PALETTE_MODES = {"P", "PA"}  # colour or gray: converted as Pillow converts them
_ALPHA_MODES = {"LA", "PA", "RGBA"}
_READ_MODES = _GRAY_MODES | _COLOUR_MODES | _PALETTE_MODES
_SAMPLED = 64  # files (or rows) whose bytes a fingerprint hashes
_PROGRESS_EVERY = 256
_SHOW_SKIPPED = 3

# Decoders, measured on this machine (one thread, 500 generated files each, best of 3, µs/file):
#                        torchvision.io.decode_image   Pillow -> numpy -> torch (Pillow 13.0)
#   JPEG 224x224 RGB             337                        486
#   JPEG 224x224 L -> 3          241                        371
#   PNG 32x32 RGB                 37                         64
#   PNG 32x32 L                   29                         56
# torchvision wins and gives identical tensors for both formats, but its decode_png (0.29.1)
# segfaults on a PNG whose zlib stream is corrupt ("libpng error: IDAT: incorrect data check"),
# killing the worker, and it mis-converts palette and 1/2/4-bit PNGs to RGB_ALPHA. So: JPEG by
# torchvision (900 fuzzed JPEGs raised or decoded, none crashed), everything else by Pillow.
_torch = None  # modules cached at first use: load() must not pay an import per call
_tvio = None
_pil = None
_pil_errors: tuple[type[BaseException], ...] = ()


def _modules():
    """(torch, torchvision.io or None): None once torchvision drops its deprecated JPEG decoder
    (deprecated in 0.29 for TorchCodec), or without torchvision; Pillow decodes JPEG then."""
    global _torch, _tvio
    if _torch is None:
        import torch

        try:
            import torchvision.io as tvio

            if not hasattr(tvio, "decode_jpeg"):
                tvio = None
        except ImportError:
            tvio = None
        # torchvision 0.29 warns on every decode call: a fact about the install, not about a sample
        warnings.filterwarnings(
            "ignore", "The image decoding and encoding capabilities of TorchVision", DeprecationWarning
        )
        _torch, _tvio = torch, tvio
    return _torch, _tvio


def _pillow():
    global _pil, _pil_errors
    if _pil is None:
        from PIL import Image

        _pil, _pil_errors = Image, (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError)
    return _pil


def decode(data: bytes | bytearray, channels: int, name: str) -> torch.Tensor:
    """A uint8 (channels, H, W) tensor of an image file's bytes; DataError naming `name` if the
    body does not decode, or if it is no JPEG and its mode has no 8-bit form (16-bit, CMYK).
    Refusing a colour image for 1 channel, or a CMYK JPEG, is the scan's job (it has the mode
    from the header); here colour is converted to luma."""
    torch, tvio = _modules()
    if data[:3] != b"\xff\xd8\xff" or tvio is None:
        return _decode_pillow(data, channels, name)
    mode = tvio.ImageReadMode.GRAY if channels == 1 else tvio.ImageReadMode.RGB  # JPEG has no RGB_ALPHA
    buf = data if isinstance(data, bytearray) else bytearray(data)  # writable: no torch warning
    try:
        out = tvio.decode_jpeg(torch.frombuffer(buf, dtype=torch.uint8), mode=mode)
    except RuntimeError as exc:
        raise DataError(f"{name}: cannot decode the JPEG: {_reason(exc)}") from None
    assert not isinstance(out, list)  # one tensor in, one tensor out (a list only for a list in)
    if channels == 4:
        out = torch.cat([out, torch.full_like(out[:1], 255)])
    return out


def _decode_pillow(data, channels: int, name: str) -> torch.Tensor:
    torch, _ = _modules()
    Image = _pillow()
    try:
        with Image.open(io.BytesIO(data)) as im:
            if im.mode not in _READ_MODES:
                raise DataError(_mode_problem(im.mode, channels, name))
            target = _TARGET_MODE[channels]
            a = np.asarray(im if im.mode == target else im.convert(target))
    except _pil_errors as exc:
        raise DataError(f"{name}: cannot decode the image: {_reason(exc)}") from None
    a = np.ascontiguousarray(a[None] if a.ndim == 2 else a.transpose(2, 0, 1))
    return torch.from_numpy(a if a.flags.writeable else a.copy())  # Pillow's own buffer is read-only


def _reason(exc: BaseException) -> str:
    """The decoder's one-line reason, without torchvision's 'function, file.cpp:line, ' prefix."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return re.sub(r"^\w+, \S+:\d+, ", "", text)


def _mode_problem(mode: str, channels: int, name: str) -> str | None:
    """Why an image of Pillow `mode` cannot feed an input of `channels`, or None."""
    if mode in _COLOUR_MODES and channels == 1:
        return (
            f"{name} is {mode} ({len(mode)} channels) but the input declares 1 channel; "
            "declare 3 channels or convert the images to grayscale"
        )
    if mode not in _READ_MODES:
        return (
            f"{name} has image mode {mode!r}, which does not convert to {channels}-channel 8-bit pixels "
            "(16-bit, 32-bit, float and CMYK images are not read); convert the images to 8-bit gray or RGB"
        )
    return None


class ImageFiles:
    """One split of an image folder: files under `root`, relative paths in one 'S' array."""

    __slots__ = ("_rootb", "channels", "labels", "paths", "root", "sizes")

    def __init__(self, root: Path, paths: np.ndarray, labels: np.ndarray, channels: int, sizes: np.ndarray):
        self.root = Path(root)
        self.paths = paths  # dtype S: relative paths, utf-8 with surrogateescape (os.fsencode)
        self.labels = labels  # int64 class index per file
        self.channels = channels
        self.sizes = sizes  # int64 byte size per file at scan time (for the fingerprint)
        self._rootb = os.fsencode(self.root)

    def __len__(self) -> int:
        return len(self.paths)

    def __repr__(self) -> str:
        return f"ImageFiles({str(self.root)!r}, {len(self)} files, {self.channels} channels)"

    def _path(self, i: int) -> bytes:
        return os.path.join(self._rootb, self.paths[i])

    def name(self, i: int) -> str:
        return os.fsdecode(self._path(i))

    def load(self, i: int) -> torch.Tensor:
        try:
            with open(self._path(i), "rb") as f:
                data = bytearray(f.read())
        except OSError as exc:
            raise DataError(f"{self.name(i)}: cannot read: {exc.strerror or exc}") from None
        return decode(data, self.channels, self.name(i))

    def fingerprint(self) -> str:
        """sha256 of the file list, sizes, labels, channels and the bytes of up to 64 spread files:
        adding, removing, renaming or resizing any file changes it; an edit only if sampled."""
        h = hashlib.sha256(b"netspec-images-1")
        h.update(str(self.channels).encode())
        for arr in (self.paths, self.sizes, self.labels):
            h.update(str((arr.dtype.str, arr.shape)).encode())
            h.update(np.ascontiguousarray(arr).tobytes())
        for i in _spread(len(self)):
            try:
                with open(self._path(i), "rb") as f:
                    h.update(hashlib.sha256(f.read()).digest())
            except OSError as exc:
                raise DataError(f"{self.name(i)}: cannot read: {exc.strerror or exc}") from None
        return h.hexdigest()


def _spread(n: int, k: int = _SAMPLED) -> np.ndarray:
    """Up to k indices evenly spaced over 0..n-1, first and last included."""
    return np.unique(np.linspace(0, n - 1, min(k, n)).round().astype(np.int64)) if n else np.arange(0)


class ArrayFile:
    """Rows of a .npy file, each read on demand at its offset; never read whole, never copied
    into a pickle (only the path and header travel; each process opens the file itself).

    Why os.pread and not the memory map np.load(mmap_mode="r") gives: on this machine's kernel
    (Linux 6.18, large page-cache folios mapped whole) each random row read through a map added
    about 1 MiB of file pages to the reader's RSS (100 rows of a 200 MB file: +108 MiB VmRSS),
    so every DataLoader worker's RSS climbed to the file's size within an epoch. pread adds
    nothing and is faster (2.8 µs against 3.6 µs a 4 kB row). Fortran-ordered files, whose rows
    are scattered, are read through the map."""

    __slots__ = ("_file", "_header", "_x", "dtype", "labels", "path", "sample_shape")

    def __init__(self, path: Path, labels: np.ndarray, dtype: str = "float32"):
        self.path = Path(path)
        self._header = _check_npy(self.path)
        self.labels = labels
        self.dtype = dtype  # 'float32' or 'int64': what load() gives
        self.sample_shape = tuple(self._header.shape[1:])
        self._file = self._x = None

    def __getstate__(self):
        return (self.path, self._header, self.labels, self.dtype, self.sample_shape)

    def __setstate__(self, state) -> None:
        self.path, self._header, self.labels, self.dtype, self.sample_shape = state
        self._file = self._x = None

    def __repr__(self) -> str:
        return f"ArrayFile({str(self.path)!r}, {len(self)} rows of {self.sample_shape} {self._header.dtype})"

    @property
    def x(self) -> np.ndarray:
        """The whole array as a read-only memory map (see the class docstring on its RSS)."""
        if self._x is None:
            try:
                self._x = np.load(self.path, mmap_mode="r", allow_pickle=False)
            except (ValueError, OSError) as exc:
                raise DataError(f"cannot map {self.path}: {exc}") from None
        return self._x

    def __len__(self) -> int:
        return len(self.labels)

    def name(self, i: int) -> str:
        return f"row {i} of {self.path}"

    def row(self, i: int) -> np.ndarray:
        """Row i as stored (the file's dtype), a fresh writable array."""
        h = self._header
        n = h.shape[0]
        if not -n <= i < n:
            raise IndexError(f"{self.name(i)}: the file has {n} rows")
        i %= n
        if h.fortran:
            return np.array(self.x[i])
        if self._file is None:
            self._file = open(self.path, "rb", buffering=0)  # noqa: SIM115  (held for the object's life)
        size = h.nbytes // n
        try:
            data = os.pread(self._file.fileno(), size, h.offset + i * size)
        except OSError as exc:
            raise DataError(f"{self.name(i)}: cannot read: {exc.strerror or exc}") from None
        if len(data) != size:
            raise DataError(f"{self.name(i)}: the file ends early (changed since it was opened?)")
        return np.frombuffer(bytearray(data), dtype=h.dtype).reshape(self.sample_shape)

    def load(self, i: int) -> torch.Tensor:
        import torch  # not _modules(): an array source needs no torchvision (~170 MiB in each worker)

        return torch.from_numpy(self.row(i).astype(self.dtype, copy=False))

    def fingerprint(self) -> str:
        h = self._header
        out = hashlib.sha256(b"netspec-array-1")
        out.update(str((h.shape, h.dtype.str, self.labels.dtype.str, self.labels.shape)).encode())
        for i in _spread(h.shape[0]):
            out.update(self.row(int(i)).tobytes())
        out.update(np.ascontiguousarray(self.labels).tobytes())
        return out.hexdigest()


@record
class Source:
    """What a data source gives the session: the splits it has, and facts to show."""

    train: ImageFiles | ArrayFile
    val: ImageFiles | ArrayFile | None = None
    test: ImageFiles | ArrayFile | None = None
    classes: list[str] | None = None  # class names in index order
    notes: list[str] = factory(list)
    image_sizes: dict[tuple[int, int], str] = factory(dict)  # (H, W) -> one file (relative to root) of that size
    modes: dict[str, int] = factory(dict)  # Pillow mode -> how many files have it (netspec init reads it)


# ---------------------------------------------------------------- image folders


class _Bad(Exception):
    """A file that is no readable image: an error, or skipped with on_bad_file='skip'."""


def open_image_folder(
    root: Path,
    channels: int,
    *,
    on_bad_file: str = "error",
    progress: Callable[[int, int], None] | None = None,
) -> Source:
    """Scan an image folder (headers only) into a Source; see the module docstring for layouts."""
    if channels not in _TARGET_MODE:
        raise ValueError(f"channels must be 1, 3 or 4, not {channels!r}")
    if on_bad_file not in ("error", "skip"):
        raise ValueError(f"on_bad_file must be 'error' or 'skip', not {on_bad_file!r}")
    root = Path(root)
    if not root.exists():
        raise DataError(f"image folder {root} does not exist")
    if not root.is_dir():
        raise DataError(f"{root} is not a folder (an image folder holds one subfolder per class)")
    dirs, loose = _list_dir(root)
    splits = _split_dirs(root, dirs)
    notes = []
    if splits:
        notes.append("split folders " + " ".join(f"{d.name}/" for d in splits.values()))
    else:
        splits = {"train": root}
        notes.append("class folders (no train/ val/ test/ split folders): val and test are split from them")
    if loose:
        notes.append(f"ignored {len(loose)} file(s) directly in {root}, outside any class folder")

    trees = {part: _class_files(d) for part, d in splits.items()}
    classes = sorted(trees["train"])
    if not classes:
        raise DataError(
            f"{splits['train']} has no class subfolders; an image folder looks like {root}/<class>/<image>, "
            f"e.g. {root}/cat/1.jpg and {root}/dog/2.jpg (or {root}/train/<class>/... with val/ and test/ beside it)"
        )
    for part, tree in trees.items():
        unknown = sorted(set(tree) - set(classes))
        if unknown:
            raise DataError(
                f"{splits[part] / unknown[0]}: class {unknown[0]!r} is not among the classes of "
                f"{splits['train']} ({', '.join(classes[:10])}{' ...' if len(classes) > 10 else ''})"
            )

    scan = _Scan(root, channels, on_bad_file, progress, sum(len(f) for t in trees.values() for f in t.values()))
    files = {part: _scan_split(splits[part], tree, classes, scan) for part, tree in trees.items()}
    notes += scan.notes()
    return Source(
        train=files["train"],
        val=files.get("val"),
        test=files.get("test"),
        classes=classes,
        notes=notes,
        image_sizes=scan.sizes,
        modes=scan.modes,
    )


def open_image_files(inputs: list[Path], channels: int) -> Source:
    """Images to predict: files as given, and every image under each folder given (sorted), all
    unlabelled (label 0). Headers are checked as in a scan; a non-image file given by name is an
    error, one met inside a folder is skipped."""
    root = Path("/")
    scan = _Scan(root, channels, "skip", None, 0)
    kept: list[tuple[bytes, int]] = []
    for given in inputs:
        given = Path(given).absolute()
        if given.is_dir():
            rels = sorted(_walk(given, b"", set()))
            files = [os.path.join(os.fsencode(given), r) for r in rels]
            files = [f for f in files if os.fsdecode(os.path.splitext(f)[1]).lower() in IMAGE_SUFFIXES]
        elif given.exists():
            files = [os.fsencode(given)]
        else:
            raise DataError(f"input {given} does not exist")
        for f in files:
            name = os.fsdecode(f)
            try:
                h, w, mode, size = _probe(f, name)
            except _Bad as exc:
                raise DataError(str(exc)) from None
            problem = _mode_problem(mode, channels, name)
            if problem:
                raise DataError(problem)
            scan.sizes.setdefault((h, w), name)
            kept.append((os.path.relpath(f, os.fsencode(root)), size))
    if not kept:
        raise DataError(f"no images in {', '.join(map(str, inputs))} (images are {', '.join(IMAGE_SUFFIXES)})")
    files = ImageFiles(
        root,
        np.array([k[0] for k in kept], dtype="S"),
        np.zeros(len(kept), dtype=np.int64),
        channels,
        np.array([k[1] for k in kept], dtype=np.int64),
    )
    return Source(train=files, image_sizes=scan.sizes)


def _list_dir(d: Path) -> tuple[list[os.DirEntry], list[os.DirEntry]]:
    """(subfolders, other entries) of `d`, hidden ones left out."""
    try:
        entries = [e for e in os.scandir(d) if not e.name.startswith(".")]
    except OSError as exc:
        raise DataError(f"cannot list {d}: {exc.strerror or exc}") from None
    dirs = [e for e in entries if e.is_dir()]
    return dirs, [e for e in entries if not e.is_dir()]


def _split_dirs(root: Path, dirs: list[os.DirEntry]) -> dict[str, Path] | None:
    """{'train': ..., 'val': ..., 'test': ...} if root holds train/, else None (class folders)."""
    if not any(e.name == "train" for e in dirs):
        return None
    splits: dict[str, Path] = {}
    for e in sorted(dirs, key=lambda e: e.name):
        part = SPLIT_NAMES.get(e.name)
        if part is None:
            raise DataError(
                f"{root} holds train/ and also {e.name}/: with split folders, only train/, "
                "val/ (or valid/, validation/) and test/ may stand beside each other"
            )
        if part in splits:
            raise DataError(f"{root} holds both {splits[part].name}/ and {e.name}/: keep one validation folder")
        splits[part] = Path(e.path)
    return {p: splits[p] for p in ("train", "val", "test") if p in splits}


def _class_files(split: Path) -> dict[str, list[bytes]]:
    """Class name -> files under split/<class>/ (recursively), relative to split, as bytes."""
    dirs, _ = _list_dir(split)
    return {e.name: _walk(Path(e.path), os.fsencode(e.name), set()) for e in dirs}


def _walk(d: Path, rel: bytes, seen: set) -> list[bytes]:
    real = os.path.realpath(d)
    if real in seen:  # a symlink loop: each real folder is read once
        return []
    seen.add(real)
    dirs, others = _list_dir(d)
    out = [os.path.join(rel, os.fsencode(e.name)) for e in others]
    for e in dirs:
        out += _walk(Path(e.path), os.path.join(rel, os.fsencode(e.name)), seen)
    return out


class _Scan:
    """What the header scan gathers across splits: sizes seen, skipped files, conversions."""

    def __init__(self, root: Path, channels: int, on_bad_file: str, progress, total: int):
        self.root, self.channels, self.on_bad_file = root, channels, on_bad_file
        self.progress, self.total, self.done = progress, total, 0
        self.sizes: dict[tuple[int, int], str] = {}
        self.skipped: list[str] = []
        self.modes: dict[str, int] = {}

    def tick(self) -> None:
        self.done += 1
        if self.progress is not None and (self.done % _PROGRESS_EVERY == 0 or self.done == self.total):
            self.progress(self.done, self.total)

    def notes(self) -> list[str]:
        out = []
        if self.skipped:
            first = ", ".join(self.skipped[:_SHOW_SKIPPED]) + (" ..." if len(self.skipped) > _SHOW_SKIPPED else "")
            out.append(f"skipped {len(self.skipped)} file(s) (not images or unreadable): {first}")
        alpha = sum(n for m, n in self.modes.items() if m in _ALPHA_MODES)
        if alpha and self.channels < 4:
            out.append(f"{alpha} image(s) have an alpha channel, dropped: the input declares {self.channels}")
        gray = sum(n for m, n in self.modes.items() if m in _GRAY_MODES)
        if gray and self.channels > 1:
            out.append(f"{gray} grayscale image(s) replicated to {self.channels} channels")
        palette = sum(n for m, n in self.modes.items() if m in _PALETTE_MODES)
        if palette:
            out.append(f"{palette} palette image(s) converted to {_TARGET_MODE[self.channels]} as Pillow converts them")
        return out


def _scan_split(split: Path, tree: dict[str, list[bytes]], classes: list[str], scan: _Scan) -> ImageFiles:
    index = {c: i for i, c in enumerate(classes)}
    kept: list[tuple[bytes, int, int]] = []  # (relative path, label, byte size)
    for cls in sorted(tree):
        before = len(kept)
        for rel in sorted(tree[cls]):
            size = _probe_one(split, rel, scan)
            if size is not None:
                kept.append((rel, index[cls], size))
        if len(kept) == before:
            why = " (every file in it was skipped)" if tree[cls] else ""
            raise DataError(f"class folder {split / cls} holds no images{why}; remove it or add images")
    kept.sort(key=lambda t: t[0])  # byte order: the same on every machine and file system
    return ImageFiles(
        split,
        np.array([k[0] for k in kept], dtype="S"),
        np.array([k[1] for k in kept], dtype=np.int64),
        scan.channels,
        np.array([k[2] for k in kept], dtype=np.int64),
    )


def _probe_one(split: Path, rel: bytes, scan: _Scan) -> int | None:
    """The file's byte size after its header checks out; None if skipped as a bad file."""
    path = os.path.join(os.fsencode(split), rel)
    name = os.fsdecode(path)
    scan.tick()
    try:
        h, w, mode, size = _probe(path, name)
    except _Bad as exc:
        if scan.on_bad_file == "error":
            raise DataError(f"{exc}; remove it, or skip bad files") from None
        scan.skipped.append(name)
        return None
    problem = _mode_problem(mode, scan.channels, name)
    if problem:
        raise DataError(problem)
    scan.modes[mode] = scan.modes.get(mode, 0) + 1
    scan.sizes.setdefault((h, w), os.fsdecode(os.path.relpath(path, os.fsencode(scan.root))))
    return size


def _probe(path: bytes, name: str) -> tuple[int, int, str, int]:
    """(H, W, Pillow mode, byte size) from the header alone; _Bad if it is no readable image."""
    suffix = os.path.splitext(path)[1].lower()
    if os.fsdecode(suffix) not in IMAGE_SUFFIXES:
        raise _Bad(
            f"{name} is not an image (suffix {os.fsdecode(suffix) or 'none'!r}; images are {', '.join(IMAGE_SUFFIXES)})"
        )
    Image = _pillow()
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            with Image.open(f) as im:  # lazy: the header only, no pixels decoded
                w, h = im.size
                return h, w, im.mode, size
    except Image.UnidentifiedImageError:
        raise _Bad(f"{name} is not an image Pillow can identify") from None
    except _pil_errors as exc:
        raise _Bad(f"{name}: cannot read the image header: {_reason(exc)}") from None


# ---------------------------------------------------------------- arrays


def _check_npy(path: Path):
    """x.npy's header, checked: numeric dtype, at least one row, the file exactly its declared size."""
    if path.suffix != ".npy":
        raise DataError(f"{path}: a memory-mapped source must be a .npy file")
    header = _header(path)
    check_headers(path, [header], None)  # the file must hold exactly what its header declares
    if header.dtype.kind not in NUMERIC:
        raise DataError(f"{path} holds {header.dtype}; expected numbers (bool, int or float)")
    if not header.shape or header.shape[0] == 0:
        raise DataError(f"{path} has shape {header.shape}: expected one row per sample, at least one")
    return header


def _header(path: Path):
    """read_headers' .npy header; numpy's fallback header parser can raise TokenError too."""
    try:
        return read_headers(path)["x"]
    except tokenize.TokenError as exc:
        raise DataError(f"{path}: not a valid .npy array ({exc.args[0]})") from None


def _read_labels(path: Path, limit: int | None) -> np.ndarray:
    if path.suffix != ".npy":
        raise DataError(f"{path}: labels must be a .npy file")
    _header(path)
    return read_arrays(path, limit)["x"]


def open_arrays(
    source: Path,
    labels: Path,
    test_source: Path | None,
    test_labels: Path | None,
    *,
    task: str,
    limit: int | None,
) -> Source:
    """x.npy (read a row at a time, never whole) and its labels .npy (read whole, within `limit`
    bytes), optionally a test pair the same way."""
    if (test_source is None) != (test_labels is None):
        raise DataError("test_source and test_labels go together: give both or neither")
    pairs = [(Path(source), Path(labels))]
    if test_source is not None and test_labels is not None:  # both or neither, checked above
        pairs.append((Path(test_source), Path(test_labels)))
    heads = [_check_npy(x) for x, _ in pairs]
    total = sum(_header(y).nbytes for _, y in pairs if y.suffix == ".npy")
    check_bytes(f"labels {', '.join(str(y) for _, y in pairs)}", total, limit)
    ys = [_read_labels(y, limit) for _, y in pairs]
    for (xp, yp), h, y in zip(pairs, heads, ys, strict=True):
        if y.ndim == 0 or len(y) != h.shape[0]:
            n = "a single value" if y.ndim == 0 else f"{len(y):,} labels"
            raise DataError(f"{yp} holds {n} but {xp} has {h.shape[0]:,} rows: one label per row")
    if len(heads) == 2 and heads[1].shape[1:] != heads[0].shape[1:]:
        raise DataError(
            f"{pairs[1][0]} has samples of shape {heads[1].shape[1:]}, {pairs[0][0]} of {heads[0].shape[1:]}: "
            "they must match"
        )
    ys, classes = _labels(ys, [y for _, y in pairs], task)
    files = [ArrayFile(x, y) for (x, _), y in zip(pairs, ys, strict=True)]
    notes = [f"{x}: {h.shape[0]:,} rows of {h.shape[1:]} {h.dtype}" for (x, _), h in zip(pairs, heads, strict=True)]
    notes += [
        f"{x} is stored in Fortran order: each row is scattered across the file; save it C-ordered to read faster"
        for (x, _), h in zip(pairs, heads, strict=True)
        if h.fortran and len(h.shape) > 1
    ]
    return Source(train=files[0], test=files[1] if len(files) > 1 else None, classes=classes, notes=notes)


def _labels(ys: list[np.ndarray], paths: list[Path], task: str) -> tuple[list[np.ndarray], list[str] | None]:
    """Class indices (train and test mapped together, so string classes agree) or float32 targets."""
    what = ", ".join(str(p) for p in paths)
    if task != "classification":
        for y, p in zip(ys, paths, strict=True):
            if y.dtype.kind not in NUMERIC:
                raise DataError(f"{p} holds {y.dtype}; regression targets must be numbers")
        return [y.astype(np.float32) for y in ys], None
    kinds = {"S" if y.dtype.kind in "US" else "n" if y.dtype.kind in NUMERIC else y.dtype.kind for y in ys}
    if len(kinds) > 1:
        raise DataError(f"{what}: the labels must all be numbers or all strings, not {[str(y.dtype) for y in ys]}")
    if kinds == {"S"}:  # text and bytes join as text
        ys = [np.char.decode(y, "utf-8", errors="replace") if y.dtype.kind == "S" else y for y in ys]
    both, classes = class_labels(np.concatenate(ys) if len(ys) > 1 else ys[0], what)
    return list(np.split(both, [len(ys[0])])) if len(ys) > 1 else [both], classes
