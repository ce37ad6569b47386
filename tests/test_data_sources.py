"""netspec.data.sources: image folders and memory-mapped arrays as indexable sample sets.

Oracles: scikit-learn's digits pixels (the files are written from them), Pillow's own conversion,
torchvision's decode_jpeg, numpy's np.load. Every bad input is a DataError naming its file."""

from __future__ import annotations

import io
import os
import pickle
import re
from pathlib import Path

import numpy as np
import pytest

from netspec.data.sources import ArrayFile, DataError, ImageFiles, decode, open_arrays, open_image_folder

from .imagedata import digits_pixels, digits_split, write_digits_npy, write_digits_tree

torch = pytest.importorskip("torch")
tvio = pytest.importorskip("torchvision.io")
Image = pytest.importorskip("PIL.Image")

# torchvision 0.29 warns on every decode that its image codecs are deprecated (for TorchCodec)
pytestmark = pytest.mark.filterwarnings("ignore:The image decoding and encoding capabilities:DeprecationWarning")

PIL_MODE = {1: "L", 3: "RGB", 4: "RGBA"}


def png_bytes(im) -> bytes:
    b = io.BytesIO()
    im.save(b, "PNG")
    return b.getvalue()


def pillow_oracle(data: bytes, channels: int) -> torch.Tensor:
    with Image.open(io.BytesIO(data)) as im:
        a = np.array(im.convert(PIL_MODE[channels]))
    return torch.from_numpy(a[None] if a.ndim == 2 else a.transpose(2, 0, 1).copy())


def index_of(files: ImageFiles, i: int) -> int:
    """The digits sample a written file holds, from its name (0123.png)."""
    return int(Path(files.name(i)).stem)


def rgb(seed: int = 0, size=(12, 10), mode: str = "RGB"):
    a = np.random.default_rng(seed).integers(0, 256, (*size, len(mode)), dtype=np.uint8)
    return Image.fromarray(a, mode)


@pytest.fixture(scope="module")
def digits_tree(tmp_path_factory) -> Path:
    return write_digits_tree(tmp_path_factory.mktemp("digits") / "d")


@pytest.fixture
def tree(tmp_path) -> Path:
    """A small tree to break: 3 classes of gray 6x5 PNGs."""
    for c in ("a", "b", "c"):
        (tmp_path / "t" / c).mkdir(parents=True)
        for k in range(4):
            Image.fromarray(np.full((6, 5), 40 * k + ord(c), np.uint8), "L").save(tmp_path / "t" / c / f"{k}.png")
    return tmp_path / "t"


# ---------------------------------------------------------------- scanning


def test_class_folders_scan_counts_classes_order_and_pixels(digits_tree):
    img, y = digits_pixels()
    src = open_image_folder(digits_tree, 1)
    files = src.train
    assert (src.val, src.test) == (None, None)
    assert src.classes == [str(c) for c in range(10)]
    assert len(files) == len(y) == 1797
    assert isinstance(files.paths, np.ndarray) and files.paths.dtype.kind == "S" and files.paths.ndim == 1
    on_disk = sorted(os.fsencode(p.relative_to(digits_tree)) for p in digits_tree.rglob("*.png"))
    assert list(files.paths) == on_disk  # every file, in byte order
    assert files.labels.dtype == np.int64
    idx = np.array([index_of(files, i) for i in range(len(files))])
    np.testing.assert_array_equal(files.labels, y[idx])
    for i in range(len(files)):  # every pixel of every file, against scikit-learn's array
        t = files.load(i)
        assert t.dtype == torch.uint8 and t.shape == (1, 8, 8)
        np.testing.assert_array_equal(t[0].numpy(), img[idx[i]])
    assert src.image_sizes == {(8, 8): "0/0000.png"}
    again = open_image_folder(digits_tree, 1)
    np.testing.assert_array_equal(again.train.paths, files.paths)
    np.testing.assert_array_equal(again.train.labels, files.labels)


def test_split_folders_train_test_and_valid(tmp_path):
    root = write_digits_tree(tmp_path / "s", layout="splits", fmt="png", scale=3)
    img, y = digits_pixels(3)
    test_mask = digits_split(len(y))
    src = open_image_folder(root, 1)
    assert (len(src.train), len(src.test), src.val) == ((~test_mask).sum(), test_mask.sum(), None)
    assert src.notes[0] == "split folders train/ test/"
    assert src.image_sizes == {(24, 24): "train/0/0000.png"}
    for part, mask in ((src.train, ~test_mask), (src.test, test_mask)):
        idx = np.array([index_of(part, i) for i in range(len(part))])
        assert sorted(idx) == list(np.flatnonzero(mask))
        np.testing.assert_array_equal(part.labels, y[idx])
        np.testing.assert_array_equal(part.load(len(part) - 1)[0].numpy(), img[idx[-1]])
    (root / "test").rename(root / "valid")
    src = open_image_folder(root, 1)
    assert src.test is None and len(src.val) == test_mask.sum()
    assert src.notes[0] == "split folders train/ valid/"


def test_progress_reports_to_the_total(digits_tree):
    calls = []
    open_image_folder(digits_tree, 1, progress=lambda done, total: calls.append((done, total)))
    assert calls[-1] == (1797, 1797)
    assert len(calls) >= 1797 // 256 and [d for d, _ in calls] == sorted(d for d, _ in calls)


def test_hidden_entries_ignored_and_symlinks_followed(tree, tmp_path):
    (tree / "a" / ".DS_Store").write_bytes(b"junk")
    (tree / ".cache").mkdir()
    (tree / ".cache" / "x.png").write_bytes(b"junk")
    outside = tmp_path / "elsewhere.png"
    Image.fromarray(np.full((3, 4), 7, np.uint8), "L").save(outside)
    (tree / "b" / "link.png").symlink_to(outside)
    (tree / "c" / "loop").symlink_to(tree / "c")  # a folder loop is read once
    src = open_image_folder(tree, 1)
    assert src.classes == ["a", "b", "c"] and len(src.train) == 13
    i = list(src.train.paths).index(b"b/link.png")
    assert src.train.load(i).tolist() == [[[7] * 4] * 3]
    assert src.image_sizes[(3, 4)] == "b/link.png"


def test_files_directly_in_root_are_noted(tree):
    Image.fromarray(np.zeros((2, 2), np.uint8)).save(tree / "stray.png")
    src = open_image_folder(tree, 1)
    assert len(src.train) == 12 and any("ignored 1 file(s) directly in" in n for n in src.notes)


# ---------------------------------------------------------------- decoding


def sample_jpegs() -> list[Path]:
    import sklearn.datasets

    d = Path(sklearn.datasets.__file__).parent / "images"
    return [d / "china.jpg", d / "flower.jpg"]


@pytest.mark.parametrize("path", sample_jpegs(), ids=lambda p: p.name)
def test_jpeg_decode_matches_torchvision_and_pillow(path):
    data = path.read_bytes()
    ours = decode(data, 3, path.name)
    direct = tvio.decode_jpeg(torch.frombuffer(bytearray(data), dtype=torch.uint8))
    assert ours.dtype == torch.uint8 and torch.equal(ours, direct)
    with_alpha = decode(data, 4, path.name)
    assert torch.equal(with_alpha[:3], direct) and bool((with_alpha[3] == 255).all())
    # Pillow bundles its own libjpeg(-turbo): the same standard decoded with its build's IDCT and
    # chroma-upsampling rounding. Same library: equal; another version may move a few values a
    # few levels, so: mean difference under half a level, under 1% of values off by more than 2.
    diff = (ours.int() - pillow_oracle(data, 3).int()).abs()
    assert diff.float().mean() < 0.5 and (diff > 2).float().mean() < 0.01


def test_gray_jpeg_is_one_channel_or_replicated(tmp_path):
    img, _ = digits_pixels(8)
    b = io.BytesIO()
    Image.fromarray(img[5], "L").save(b, "JPEG", quality=90)
    data = b.getvalue()
    one = decode(data, 1, "g.jpg")
    assert torch.equal(one, pillow_oracle(data, 1))  # gray JPEG: no colour conversion to differ in
    assert torch.equal(decode(data, 3, "g.jpg"), one.expand(3, -1, -1))


MODES = {
    "1": lambda: Image.fromarray(np.asarray(rgb(1))[..., 0] > 128),
    "L": lambda: rgb(2).convert("L"),
    "LA": lambda: Image.fromarray(np.asarray(rgb(3, mode="RGBA"))[..., :2], "LA"),
    "P": lambda: rgb(4).quantize(16),
    "RGB": lambda: rgb(5),
    "RGBA": lambda: rgb(6, mode="RGBA"),
}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("channels", [1, 3, 4])
def test_png_conversion_is_pillows(mode, channels):
    im = MODES[mode]()
    assert im.mode == mode
    data = png_bytes(im)
    assert torch.equal(decode(data, channels, "x.png"), pillow_oracle(data, channels))


@pytest.mark.parametrize(("mode", "channels"), [("L", 1), ("RGB", 3), ("RGBA", 4)])
def test_png_round_trip_is_exact(mode, channels):
    im = MODES[mode]()
    t = decode(png_bytes(im), channels, "x.png")
    a = np.asarray(im)
    np.testing.assert_array_equal(t.numpy(), a[None] if a.ndim == 2 else a.transpose(2, 0, 1))
    t[0, 0, 0] = 1  # writable, not a view of a decoder's read-only buffer


def test_gray_to_three_and_four_channels(tree):
    gray = open_image_folder(tree, 1).train.load(5)
    three = open_image_folder(tree, 3)
    assert torch.equal(three.train.load(5), gray.expand(3, -1, -1))
    assert any("12 grayscale image(s) replicated to 3 channels" in n for n in three.notes)
    four = open_image_folder(tree, 4).train.load(5)
    assert torch.equal(four[:3], gray.expand(3, -1, -1)) and bool((four[3] == 255).all())


def test_rgba_to_three_channels_drops_alpha_with_a_note(tmp_path):
    im = rgb(7, mode="RGBA")
    (tmp_path / "r" / "k").mkdir(parents=True)
    im.save(tmp_path / "r" / "k" / "a.png")
    im.save(tmp_path / "r" / "k" / "b.png")
    src = open_image_folder(tmp_path / "r", 3)
    np.testing.assert_array_equal(src.train.load(0).numpy(), np.asarray(im)[..., :3].transpose(2, 0, 1))
    alpha = [n for n in src.notes if "alpha" in n]
    assert alpha == ["2 image(s) have an alpha channel, dropped: the input declares 3"]


# ---------------------------------------------------------------- bad input


def raises_naming(what, fn, *args, **kwargs) -> str:
    with pytest.raises(DataError) as info:
        fn(*args, **kwargs)
    assert str(what) in str(info.value), str(info.value)
    return str(info.value)


def test_missing_root_and_root_a_file(tmp_path):
    raises_naming(tmp_path / "nope", open_image_folder, tmp_path / "nope", 3)
    (tmp_path / "f.png").write_bytes(b"x")
    raises_naming(tmp_path / "f.png", open_image_folder, tmp_path / "f.png", 3)


def test_no_class_folders_says_the_layout(tmp_path):
    (tmp_path / "flat").mkdir()
    Image.fromarray(np.zeros((2, 2), np.uint8)).save(tmp_path / "flat" / "1.png")
    msg = raises_naming(tmp_path / "flat", open_image_folder, tmp_path / "flat", 1)
    assert "no class subfolders" in msg and "<class>/<image>" in msg


def test_empty_class_folder(tree):
    (tree / "d").mkdir()
    raises_naming(tree / "d", open_image_folder, tree, 1)


def test_non_image_files_by_suffix_and_by_content(tree):
    (tree / "b" / "notes.txt").write_text("hello")
    msg = raises_naming(tree / "b" / "notes.txt", open_image_folder, tree, 1)
    assert "not an image" in msg
    (tree / "b" / "notes.txt").unlink()
    (tree / "c" / "fake.png").write_text("not a png")
    msg = raises_naming(tree / "c" / "fake.png", open_image_folder, tree, 1)
    assert "not an image" in msg


def test_corrupt_header_at_scan(tree):
    good = (tree / "a" / "0.png").read_bytes()
    (tree / "a" / "9.png").write_bytes(good[:20])  # inside IHDR
    raises_naming(tree / "a" / "9.png", open_image_folder, tree, 1)


def test_corrupt_png_body_fails_at_load_naming_the_file(tree):
    data = bytearray(png_bytes(rgb(8, size=(32, 32)).convert("L")))
    start = data.index(b"IDAT") + 8
    data[start : start + 40] = bytes(40)  # the zlib stream, header left intact
    (tree / "a" / "9.png").write_bytes(data)
    files = open_image_folder(tree, 1).train
    i = list(files.paths).index(b"a/9.png")
    msg = raises_naming(tree / "a" / "9.png", files.load, i)
    assert "cannot decode" in msg
    files.load(i - 1)  # its neighbours still load


def test_truncated_jpeg_fails_at_load(tree):
    data = sample_jpegs()[0].read_bytes()
    (tree / "a" / "z.jpg").write_bytes(data[: len(data) // 2])
    files = open_image_folder(tree, 3).train
    msg = raises_naming(tree / "a" / "z.jpg", files.load, list(files.paths).index(b"a/z.jpg"))
    assert "truncated" in msg and ".cpp" not in msg


@pytest.mark.parametrize("mode", ["RGB", "RGBA"])
def test_colour_image_with_one_channel_declared(tree, mode):
    rgb(9, mode=mode).save(tree / "b" / "colour.png")
    for how in ("error", "skip"):  # not a bad file: a spec/data mismatch, never skipped
        msg = raises_naming(tree / "b" / "colour.png", open_image_folder, tree, 1, on_bad_file=how)
        assert f"is {mode} ({len(mode)} channels) but the input declares 1 channel" in msg
    assert len(open_image_folder(tree, 3).train) == 13


def test_sixteen_bit_and_cmyk_images(tree):
    Image.fromarray(np.full((4, 4), 40000, np.uint16)).save(tree / "a" / "deep.png")
    assert Image.open(tree / "a" / "deep.png").mode.startswith("I")
    msg = raises_naming(tree / "a" / "deep.png", open_image_folder, tree, 3)
    assert "image mode 'I" in msg
    (tree / "a" / "deep.png").unlink()
    rgb(10).convert("CMYK").save(tree / "a" / "ink.jpg")
    assert "'CMYK'" in raises_naming(tree / "a" / "ink.jpg", open_image_folder, tree, 3)
    with pytest.raises(DataError, match="image mode"):  # decode refuses it too, when not scanned first
        decode(png_bytes(Image.fromarray(np.zeros((2, 2), np.uint16))), 1, "deep.png")


def test_val_class_unknown_to_train(tmp_path):
    root = write_digits_tree(tmp_path / "s", layout="splits")
    (root / "val" / "11").mkdir(parents=True)
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(root / "val" / "11" / "x.png")
    msg = raises_naming(root / "val" / "11", open_image_folder, root, 1)
    assert "'11'" in msg


def test_split_layout_refuses_other_folders(tree):
    (tree / "train").mkdir()
    raises_naming(tree, open_image_folder, tree, 1)


def test_skip_counts_bad_files(tree):
    (tree / "a" / "x.txt").write_text("x")
    (tree / "b" / "y.png").write_text("y")
    (tree / "c" / "z.jpg").write_bytes(b"\xff\xd8\xff")
    src = open_image_folder(tree, 1, on_bad_file="skip")
    assert len(src.train) == 12
    (note,) = [n for n in src.notes if n.startswith("skipped")]
    assert note.startswith("skipped 3 file(s)") and str(tree / "a" / "x.txt") in note
    for f in (tree / "a").iterdir():
        f.unlink()
    (tree / "a" / "x.txt").write_text("x")
    msg = raises_naming(tree / "a", open_image_folder, tree, 1, on_bad_file="skip")
    assert "every file in it was skipped" in msg


def test_bad_arguments_are_programming_errors(tree):
    with pytest.raises(ValueError):
        open_image_folder(tree, 2)
    with pytest.raises(ValueError):
        open_image_folder(tree, 1, on_bad_file="ignore")


# ---------------------------------------------------------------- fingerprints and pickling


def test_image_fingerprint_follows_the_files(tmp_path):
    root = write_digits_tree(tmp_path / "d")
    fp = open_image_folder(root, 1).train.fingerprint()
    assert open_image_folder(root, 1).train.fingerprint() == fp  # stable
    assert open_image_folder(root, 3).train.fingerprint() != fp  # another tensor per file
    first = root / "0" / "0000.png"  # index 0: always among the sampled files
    data = first.read_bytes()
    first.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))  # same size, one bit
    assert open_image_folder(root, 1).train.fingerprint() != fp
    first.write_bytes(data)
    assert open_image_folder(root, 1).train.fingerprint() == fp
    extra = root / "3" / "9999.png"
    extra.write_bytes(data)
    assert open_image_folder(root, 1).train.fingerprint() != fp
    extra.unlink()
    assert open_image_folder(root, 1).train.fingerprint() == fp
    (root / "5" / "0005.png").unlink()
    assert open_image_folder(root, 1).train.fingerprint() != fp


def test_image_files_pickle_small_and_load_after(digits_tree):
    files = open_image_folder(digits_tree, 1).train
    blob = pickle.dumps(files)
    arrays = files.paths.nbytes + files.labels.nbytes + files.sizes.nbytes
    assert len(blob) < arrays + 1000
    back = pickle.loads(blob)
    assert torch.equal(back.load(100), files.load(100)) and back.name(100) == files.name(100)


# ---------------------------------------------------------------- arrays


def test_arrays_digits(tmp_path):
    x_path, y_path = write_digits_npy(tmp_path)
    src = open_arrays(x_path, y_path, None, None, task="classification", limit=None)
    x, y = np.load(x_path), np.load(y_path)
    a = src.train
    assert isinstance(a, ArrayFile) and len(a) == len(x) and a.sample_shape == (1, 8, 8)
    assert src.classes is None and src.test is None and src.image_sizes == {}
    np.testing.assert_array_equal(a.labels, y)
    for i in (0, 17, len(x) - 1):
        t = a.load(i)
        assert t.dtype == torch.float32 and torch.equal(t, torch.from_numpy(x[i]))
    assert a.name(17) == f"row 17 of {x_path}"
    blob = pickle.dumps(a)
    assert len(blob) < y.nbytes + 2000 < x.nbytes  # the map is not pickled, only its path
    back = pickle.loads(blob)
    assert torch.equal(back.load(5), a.load(5)) and back.fingerprint() == a.fingerprint()


def test_arrays_string_classes_shared_with_test_and_int64_rows(tmp_path):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "x.npy", rng.integers(0, 100, (30, 4)).astype(np.int32))
    np.save(tmp_path / "xt.npy", rng.integers(0, 100, (10, 4)).astype(np.int32))
    names = np.array(["cat", "dog", "emu"])
    y, yt = names[rng.integers(0, 3, 30)], np.array(["emu"] * 10)
    np.save(tmp_path / "y.npy", y)
    np.save(tmp_path / "yt.npy", yt)
    p = tmp_path
    src = open_arrays(p / "x.npy", p / "y.npy", p / "xt.npy", p / "yt.npy", task="classification", limit=None)
    assert src.classes == sorted(set(y) | set(yt))
    np.testing.assert_array_equal(np.array(src.classes)[src.train.labels], y)
    np.testing.assert_array_equal(np.array(src.classes)[src.test.labels], yt)
    src.test.dtype = "int64"
    t = src.test.load(3)
    assert t.dtype == torch.int64 and t.tolist() == np.load(p / "xt.npy")[3].tolist()


def test_fortran_ordered_rows_and_big_endian_values(tmp_path):
    x = np.arange(60, dtype=">f8").reshape(5, 3, 4)
    np.save(tmp_path / "f.npy", np.asfortranarray(x))
    np.save(tmp_path / "b.npy", x)
    np.save(tmp_path / "y.npy", np.arange(5))
    for name in ("f.npy", "b.npy"):
        src = open_arrays(tmp_path / name, tmp_path / "y.npy", None, None, task="classification", limit=None)
        for i in range(5):
            assert torch.equal(src.train.load(i), torch.from_numpy(x[i].astype(np.float32)))
        assert any("Fortran order" in n for n in src.notes) == (name == "f.npy")
    with pytest.raises(IndexError):
        src.train.load(5)


def test_arrays_regression_targets_float32(tmp_path):
    x_path, _ = write_digits_npy(tmp_path)
    target = np.linspace(-1, 1, 1797)
    np.save(tmp_path / "t.npy", target)
    src = open_arrays(x_path, tmp_path / "t.npy", None, None, task="regression", limit=None)
    assert src.train.labels.dtype == np.float32 and src.classes is None
    np.testing.assert_array_equal(src.train.labels, target.astype(np.float32))


def test_labels_of_another_length(tmp_path):
    x_path, y_path = write_digits_npy(tmp_path)
    np.save(y_path, np.zeros(1796, np.int64))
    msg = raises_naming(x_path, open_arrays, x_path, y_path, None, None, task="classification", limit=None)
    assert str(y_path) in msg and "1,796" in msg and "1,797" in msg


def test_test_sample_shape_must_match(tmp_path):
    x_path, y_path = write_digits_npy(tmp_path)
    np.save(tmp_path / "xt.npy", np.zeros((5, 1, 8, 9), np.float32))
    np.save(tmp_path / "yt.npy", np.zeros(5, np.int64))
    msg = raises_naming(
        tmp_path / "xt.npy", open_arrays, x_path, y_path, tmp_path / "xt.npy", tmp_path / "yt.npy",
        task="classification", limit=None,
    )  # fmt: skip
    assert "(1, 8, 9)" in msg and "(1, 8, 8)" in msg


def test_hostile_npy_headers(tmp_path):
    _, y_path = write_digits_npy(tmp_path)
    bad = tmp_path / "bad.npy"
    bad.write_bytes(b"\x93NUMPY\x01\x00\x20\x00{'descr': 'zz', 'shape': (((((}" + b" " * 10)
    raises_naming(bad, open_arrays, bad, y_path, None, None, task="classification", limit=None)
    np.save(bad, np.array([{"a": 1}] * 1797, dtype=object), allow_pickle=True)
    assert "object" in raises_naming(bad, open_arrays, bad, y_path, None, None, task="classification", limit=None)
    np.save(bad, np.zeros((1797, 10), np.float32))
    bad.write_bytes(bad.read_bytes()[:-8])  # shorter than its header declares
    raises_naming(bad, open_arrays, bad, y_path, None, None, task="classification", limit=None)
    raises_naming(tmp_path / "none.npy", open_arrays, tmp_path / "none.npy", y_path, None, None, task="c", limit=None)


def test_limit_bounds_the_labels_not_the_mapped_rows(tmp_path):
    x_path, y_path = write_digits_npy(tmp_path)
    y_bytes = np.load(y_path).nbytes
    assert np.load(x_path).nbytes > 10 * y_bytes
    src = open_arrays(x_path, y_path, None, None, task="classification", limit=y_bytes + 100)
    assert len(src.train) == 1797
    msg = raises_naming(y_path, open_arrays, x_path, y_path, None, None, task="classification", limit=y_bytes - 1)
    assert "memory limit" in msg


def test_array_fingerprint(tmp_path):
    x_path, y_path = write_digits_npy(tmp_path)
    fp = open_arrays(x_path, y_path, None, None, task="classification", limit=None).train.fingerprint()
    assert open_arrays(x_path, y_path, None, None, task="classification", limit=None).train.fingerprint() == fp
    x = np.load(x_path)
    x[0, 0, 3, 3] += 1  # row 0 is always sampled
    np.save(x_path, x)
    assert open_arrays(x_path, y_path, None, None, task="classification", limit=None).train.fingerprint() != fp
    x[0, 0, 3, 3] -= 1
    np.save(x_path, x)
    y = np.load(y_path)
    y[100] = (y[100] + 1) % 10
    np.save(y_path, y)
    assert open_arrays(x_path, y_path, None, None, task="classification", limit=None).train.fingerprint() != fp


def rss_bytes() -> int:
    text = Path("/proc/self/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", text).group(1)) * 1024


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="VmRSS from /proc (Linux)")
def test_big_array_is_mapped_not_read(tmp_path):
    rows, width = 50_000, 1_000  # 200 MB of float32
    x = np.lib.format.open_memmap(tmp_path / "big.npy", mode="w+", dtype=np.float32, shape=(rows, width))
    for start in range(0, rows, 5_000):  # row i holds i: its own oracle
        x[start : start + 5_000] = np.arange(start, start + 5_000, dtype=np.float32)[:, None]
    x.flush()
    del x  # unmapped: the pages written leave this process's RSS
    np.save(tmp_path / "y.npy", np.arange(rows) % 7)
    src = open_arrays(tmp_path / "big.npy", tmp_path / "y.npy", None, None, task="classification", limit=None)
    src.train.load(0)  # torch's first use (imports) out of the measure
    before = rss_bytes()
    picked = np.random.default_rng(0).choice(rows, 100, replace=False)
    for i in picked:
        row = src.train.load(int(i))
        assert row.shape == (width,) and bool((row == float(i)).all())
    src.train.fingerprint()
    grown = rss_bytes() - before
    assert grown < 50 * 2**20, f"RSS grew {grown / 2**20:.0f} MiB reading 100 rows of a 200 MB file"
