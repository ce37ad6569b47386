"""Training on streamed data, on real bytes: scikit-learn's digits written as PNG class folders and
as x.npy / y.npy (tests/imagedata.py), read through DataLoader workers.

  1. the digits CNN learns the PNG folder and the .npy to >= 0.97 test accuracy, checked against
     a forward pass of its weights over the test files read back here with Pillow / numpy
  2. SIGKILLed `netspec train` processes (2 workers, random augmentation, checkpoints every 5
     steps) resumed with --resume at once end bit-identical to an uninterrupted run, for an image
     folder, a .npy and in-memory digits
  3. the same spec with workers 0 and 2 trains to identical weights
  4. a resume on changed data is refused
  5. the workers' RSS stays flat over 3 epochs of a folder of 3,594 files
  6. bad data is one line naming the file (exit 1), also when a worker finds it; on_bad_file: skip
  7. the data line

Subprocesses run with one intra-op thread (test_faults' ENV) and the specs say threads: 1, so that
in-process and subprocess runs do the same arithmetic and no run spins threads on a busy machine.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from netspec.runtime.session import load_data, load_run, open_spec

from .conftest import ROOT
from .imagedata import digits_pixels, write_digits_npy, write_digits_tree
from .test_faults import ENV, NETSPEC
from .test_train import assert_same_run, metrics, run_cli

DIGITS_DATA = "  data: {source: digits, test_fraction: 0.2, val_fraction: 0}"


def digits_cnn(data: str, epochs: int) -> str:
    """specs/digits_cnn.yaml with its data line replaced and `epochs` epochs: the layers and
    training settings as the spec has them."""
    text = (ROOT / "specs" / "digits_cnn.yaml").read_text()
    assert DIGITS_DATA in text and "  epochs: 40\n" in text
    return text.replace(DIGITS_DATA, f"  data: {data}").replace("  epochs: 40\n", f"  epochs: {epochs}\n")


# A small CNN with batchnorm and dropout: with test 50% and val 20% of the rest, 718 training
# samples in batches of 16, 45 steps per epoch (the last one short); a checkpoint every 5 steps,
# a cosine schedule.
SMALL = """netspec: 1
name: stream_small
inputs:
  image: {shape: [1, 8, 8]}
layers:
  - conv2d: {out_channels: 8, kernel_size: 3, padding: same}
  - batchnorm2d
  - relu
  - maxpool2d: 2
  - flatten
  - dropout: 0.2
  - linear: 10
train:
  data:
    source: SOURCE
    test_fraction: 0.5
    val_fraction: 0.2
    loader: {workers: WORKERS}
    augment: AUGMENT
  batch_size: 16
  epochs: 2
  optimizer: {name: adamw, lr: 0.01, weight_decay: 0.0001}
  schedule: {name: cosine, warmup_epochs: 1}
  checkpoint_every_steps: 5
  threads: 1
  seed: 0
"""

# Each draws random numbers per sample (crops, flips, erasing, rotations) and two per batch too.
FOLDER_AUG = "[{random_crop: {size: 8, padding: 1}}, horizontal_flip, random_erasing]"
NPY_AUG = "[{random_crop: {size: 8, padding: 1}}, horizontal_flip, mixup]"
MEMORY_AUG = "[{random_crop: {size: 8, padding: 1}}, {rotate: {degrees: 15}}, cutmix]"


STEPS = 45


def small(source: str, augment: str, workers: int = 2) -> str:
    return SMALL.replace("SOURCE", source).replace("AUGMENT", augment).replace("WORKERS", str(workers))


@pytest.fixture(scope="module")
def digits_tree(tmp_path_factory) -> Path:
    """The 1,797 digits as root/<digit>/<index>.png, written once: copy it before changing it."""
    return write_digits_tree(tmp_path_factory.mktemp("tree") / "digits")


def folder_case(tmp_path: Path, tree: Path, text: str) -> Path:
    """spec.yaml beside a copy of the digits tree (./digits)."""
    shutil.copytree(tree, tmp_path / "digits")
    spec = tmp_path / "spec.yaml"
    spec.write_text(text)
    return spec


def npy_case(tmp_path: Path, text: str) -> Path:
    write_digits_npy(tmp_path)
    spec = tmp_path / "spec.yaml"
    spec.write_text(text)
    return spec


def train_in_process(spec: Path, run: Path, *args) -> str:
    code, out, err = run_cli("train", spec, "-o", run, *args)
    assert code == 0, out + err
    assert "Traceback" not in out + err
    return out + err


def netspec_train(*args, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(NETSPEC), "train", *map(str, args)], capture_output=True, text=True, env=ENV, timeout=timeout
    )


# ----------------------------------------------------------------------------- 1. accuracy


def test_digits_cnn_learns_the_png_folder_and_the_npy(digits_tree, tmp_path):
    """10 epochs of the digits CNN (the spec's layers, batch, optimizer, schedule and loss; 40
    epochs cut to 10: 0.992 / 0.994 / 0.989 test accuracy with seeds 0 / 1 / 2 on the PNGs, 0.989 /
    0.997 / 0.986 on the .npy):
    >= 0.97 on the held-out test split, for the PNG folder read by 2 workers and for the .npy.
    The accuracy is recomputed here from weights.pt over the test files, read back with Pillow
    (or numpy) and scaled as netspec documents (uint8 / 255), so the number is not only the loop's."""
    from PIL import Image

    for kind in ("folder", "npy"):
        d = tmp_path / kind
        d.mkdir()
        if kind == "folder":
            shutil.copytree(digits_tree, d / "digits")
            data = "{source: ./digits, test_fraction: 0.2, val_fraction: 0, loader: {workers: 2}}"
        else:
            write_digits_npy(d)
            data = "{source: ./x.npy, labels: ./y.npy, test_fraction: 0.2, val_fraction: 0, loader: {workers: 2}}"
        spec = d / "spec.yaml"
        spec.write_text(digits_cnn(data, epochs=10))
        run = d / "run"
        train_in_process(spec, run, "-q", "--set", "train.threads=1")
        reported = json.loads((run / "results.json").read_text())["test"]

        s = open_spec(spec, ["train.threads=1"])
        st = load_data(s, spec.parent)
        test, train = st.index["test"], st.index["train"]
        assert len(test) == 359 and not set(test.tolist()) & set(train.tolist())
        files = st.sets["test"]
        if kind == "folder":
            paths = [Path(files.name(int(i))) for i in test]
            x = np.stack([np.asarray(Image.open(p).convert("L")) for p in paths])[:, None]
            x = torch.from_numpy(x).float() / 255
            y = torch.tensor([int(p.parent.name) for p in paths])  # the class folder's name
        else:
            x = torch.from_numpy(np.load(d / "x.npy")[test])
            y = torch.from_numpy(np.load(d / "y.npy")[test])
        _, model, _ = load_run(run)
        with torch.no_grad():
            accuracy = (model(x).argmax(-1) == y).double().mean().item()
        print(f"{kind}: test accuracy {accuracy:.4f} (results.json {reported['accuracy']:.4f})")
        assert accuracy >= 0.97, (kind, accuracy)
        assert reported["accuracy"] >= 0.97, (kind, reported["accuracy"])
        assert abs(accuracy - reported["accuracy"]) <= 1 / len(test), (kind, accuracy, reported["accuracy"])
        if kind == "folder":  # class names from the folders: a per-class report (a .npy of ints has none)
            assert sum(map(sum, reported["confusion_matrix"])) == len(test)


# ----------------------------------------------------------------------------- 2. SIGKILL and resume


def _last_step(run: Path) -> int:
    """global_step of checkpoints/last.pt, or -1 while there is none."""
    try:
        return torch.load(run / "checkpoints" / "last.pt", weights_only=True)["state"]["global_step"]
    except Exception:  # absent, or replaced while it was read
        return -1


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (state, ppid, ...), or None."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None


def _children(pid: int) -> list[tuple[int, str]]:
    """(pid, start time) of the processes whose parent is `pid` (DataLoader workers), from /proc."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (fields := _stat(int(entry))) and int(fields[1]) == pid:
            out.append((int(entry), fields[19]))
    return out


def train_with_kills(spec: Path, run: Path, kills: list, log: Path) -> list[str]:
    """`netspec train` as a subprocess, SIGKILLed (the main process alone, as `kill -9 PID` does)
    as soon as each `kills` predicate holds (of the run folder and of the checkpoint's step when
    that process started), and started again with --resume at once after each kill; the last
    --resume runs to the end. Returns each resume's 'resumed at' line."""
    resumed, orphans = [], []
    try:
        for i in range(len(kills) + 1):
            args = ["--resume"] if i else []
            with open(log, "a") as out:
                out.write(f"--- run {i} {args}\n")
                out.flush()
                proc = subprocess.Popen(
                    [str(NETSPEC), "train", str(spec), "-o", str(run), *args], stdout=out, stderr=out, env=ENV
                )
            try:
                if i == len(kills):
                    assert proc.wait(timeout=300) == 0, log.read_text()
                else:
                    end, start = time.monotonic() + 240, _last_step(run)
                    while not kills[i](run, start):
                        assert proc.poll() is None, f"run {i} ended before its kill point:\n{log.read_text()}"
                        assert time.monotonic() < end, f"run {i} never reached its kill point:\n{log.read_text()}"
                        time.sleep(0.01)
                    workers = _children(proc.pid)
                    assert workers, "no DataLoader workers to kill the run under"
                    orphans += workers
                    os.kill(proc.pid, signal.SIGKILL)
                    assert proc.wait(timeout=60) == -signal.SIGKILL
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
            if i:
                text = log.read_text().rpartition(f"--- run {i} ")[2]
                resumed.append(next(ln for ln in text.splitlines() if ln.startswith("resumed at")))
    finally:
        for pid, started in orphans:  # the killed runs' workers end on their own within seconds: do not wait
            fields = _stat(pid)
            if fields and fields[19] == started and fields[0] != "Z":  # that worker, not a reused pid
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
    return resumed


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["folder", "npy", "memory"])
def test_sigkill_mid_epoch_with_workers_resumes_bit_exact(digits_tree, tmp_path, kind):
    """SIGKILLs of a real `netspec train` with 2 DataLoader workers and random per-sample (and, for
    .npy and memory, per-batch: mixup, cutmix) augmentation, 45 steps per epoch, a checkpoint every
    5: at the first checkpoint at or after step 10 (mid epoch 1); right after epoch 1's metrics
    line (before its end-of-epoch checkpoint: resumed from step 40 with that line, which no
    checkpoint covers, written again; or after it, early in epoch 2); and, for the folder, at the
    first checkpoint at or after step 45 + 10 and 5 steps past the resumed one (mid epoch 2). Each
    resume starts at once, while the killed run's orphaned workers may still live (they held the
    run's lock until netspec.runtime.lock closed it in forked children). The final weights.pt is
    torch.equal tensor by tensor, and metrics.jsonl and results.json equal (but for timings), to
    one uninterrupted subprocess run of the same spec. (Two kills, not three, for .npy and memory:
    each `netspec train` costs seconds of imports.)"""
    if kind == "folder":
        spec = folder_case(tmp_path, digits_tree, small("./digits", FOLDER_AUG))
    elif kind == "npy":
        spec = npy_case(tmp_path, small("./x.npy\n    labels: ./y.npy", NPY_AUG))
    else:
        spec = tmp_path / "spec.yaml"
        spec.write_text(small("digits", MEMORY_AUG))
    ref = netspec_train(spec, "-o", tmp_path / "ref")
    assert ref.returncode == 0, ref.stdout + ref.stderr
    steps = -(-json.loads((tmp_path / "ref" / "data.json").read_text())["samples"]["train"] // 16)
    assert steps == STEPS
    assert "2 workers" in ref.stdout

    kills = [
        lambda run, start: _last_step(run) >= 10,
        lambda run, start: (run / "metrics.jsonl").exists() and len(metrics(run)) >= 1,
        lambda run, start: _last_step(run) >= max(steps + 10, start + 5),
    ]
    run = tmp_path / "run"
    resumed = train_with_kills(spec, run, kills if kind == "folder" else kills[:2], tmp_path / "log.txt")
    where = [
        tuple(map(int, re.match(rf"resumed at epoch (\d+), step (\d+) of {STEPS}$", ln).groups())) for ln in resumed
    ]
    assert where[0][0] == 1 and 10 <= where[0][1] < steps, resumed  # mid epoch 1
    assert where[1] == (1, steps - 5) or where[1][0] == 2, resumed  # around epoch 1's end
    if kind == "folder":
        assert where[2][0] == 2 and 10 <= where[2][1] < steps and where[2] != where[1], resumed  # mid epoch 2
    assert_same_run(tmp_path / "ref", run)
    assert len(metrics(run)) == 2


# ----------------------------------------------------------------------------- 3. workers


def test_workers_do_not_change_the_result(digits_tree, tmp_path):
    """Random crops, flips, erasing and mixup, 2 epochs: workers 0 (every transform in the main
    process) and workers 2 give torch.equal weights and equal metrics. The augmentation really is
    random: one sample's two epochs differ."""
    runs = {}
    for workers in (0, 2):
        d = tmp_path / f"w{workers}"
        d.mkdir()
        aug = FOLDER_AUG.replace("random_erasing", "random_erasing, mixup")
        spec = folder_case(d, digits_tree, small("./digits", aug, workers))
        out = train_in_process(spec, d / "run")
        assert f"{workers} worker" in out
        runs[workers] = d / "run"
    assert_same_run(runs[0], runs[2])
    assert len(metrics(runs[0])) == 2

    from netspec.runtime.session import feed

    s = open_spec(tmp_path / "w0" / "spec.yaml")
    train = feed(s, load_data(s, tmp_path / "w0"), "cpu")[0]["train"]
    assert train.pipeline.random
    a, b = train.dataset[(0, 0)][0], train.dataset[(1, 0)][0]
    assert a.shape == b.shape == (1, 8, 8) and not torch.equal(a, b)
    assert torch.equal(a, train.dataset[(0, 0)][0])  # the same (epoch, sample), the same draw


# ----------------------------------------------------------------------------- 4. changed data


@pytest.mark.parametrize("change", ["add", "edit"])
def test_resume_on_changed_data_is_refused(digits_tree, tmp_path, change):
    """One epoch (--max-steps 45 stops at its end with a checkpoint), then one image added to a
    class folder, or one file rewritten with another digit's pixels: --resume is exit 1 naming the
    change, without a traceback, and leaves the checkpoint as it was. Undone, the resume goes on."""
    from PIL import Image

    spec = folder_case(tmp_path, digits_tree, small("./digits", FOLDER_AUG).replace("epochs: 2", "epochs: 3"))
    run = tmp_path / "run"
    out = train_in_process(spec, run, "--max-steps", STEPS)
    assert f"stopped after {STEPS} steps" in out and len(metrics(run)) == 1
    before = (run / "checkpoints" / "last.pt").read_bytes()

    img, _ = digits_pixels()
    target = tmp_path / "digits" / "3" / ("extra.png" if change == "add" else "0003.png")
    original = target.read_bytes() if target.exists() else None
    Image.fromarray(img[0], "L").save(target)  # a 0 among the 3s
    if original is not None:
        assert target.read_bytes() != original

    code, out, err = run_cli("train", spec, "-o", run, "--resume")
    assert code == 1, out + err
    assert "cannot resume: the data changed since the checkpoint was written" in err
    assert "Traceback" not in out + err
    assert len([ln for ln in err.splitlines() if ln.strip()]) == 1, err
    assert (run / "checkpoints" / "last.pt").read_bytes() == before

    if original is None:
        target.unlink()
    else:
        target.write_bytes(original)
    out = train_in_process(spec, run, "--resume", "--max-steps", 1)
    assert f"resumed at epoch 2, step 0 of {STEPS}" in out


# ----------------------------------------------------------------------------- 5. worker RSS


RSS_DRIVER = r"""
import json, os, sys
from pathlib import Path

from netspec.runtime.loop import epoch_order
from netspec.runtime.session import feed, load_data, open_spec

spec = Path(sys.argv[1])
s = open_spec(spec)
train = feed(s, load_data(s, spec.parent), "cpu")[0]["train"]


def children():
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rpartition(")")[2].split()[1]) == os.getpid():
                out.append(int(entry))
    return sorted(out)


def rss(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])


log = []
for epoch in range(3):
    seen = 0
    for x, y, _ in train.batches(epoch_order(len(train), epoch, 0, 0, 1), 0, 64, epoch):
        seen += len(y)
    log.append({"epoch": epoch + 1, "samples": seen, "workers": {p: rss(p) for p in children()}, "main": rss(os.getpid())})
print(json.dumps(log))
"""


@pytest.mark.slow
def test_worker_rss_stays_flat_over_epochs(tmp_path):
    """A folder of 3,594 PNG files (the digits at 32x32, each written twice), read for 3 epochs by
    2 persistent workers with random crops and flips: each worker's VmRSS (from /proc, sampled by
    the driver at each epoch's end) grows less than 10% from epoch 1 to epoch 3. The workers are
    the same processes in all three epochs, and each epoch reads every training file. Measured:
    410,572 -> 410,600 KiB (+0.007%), the main process 707,096 -> 707,428 KiB."""
    from PIL import Image

    root = write_digits_tree(tmp_path / "big", scale=4)
    for png in list(root.glob("*/*.png")):
        Image.open(png).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(png.with_name(png.stem + "m.png"))
    assert len(list(root.glob("*/*.png"))) == 3594
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "netspec: 1\nname: rss\ninputs:\n  image: {shape: [1, 32, 32]}\nlayers:\n  - flatten\n  - linear: 10\n"
        "train:\n  data: {source: ./big, test_fraction: 0.1, val_fraction: 0, loader: {workers: 2},\n"
        "         augment: [{random_crop: {size: 32, padding: 4}}, horizontal_flip]}\n  seed: 0\n"
    )
    driver = tmp_path / "driver.py"
    driver.write_text(RSS_DRIVER)
    proc = subprocess.run(
        [sys.executable, str(driver), str(spec)], capture_output=True, text=True, env=ENV, timeout=300
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    log = json.loads(proc.stdout.strip().splitlines()[-1])
    print("worker RSS (KiB) per epoch:", json.dumps(log))
    train_files = log[0]["samples"]
    assert train_files == 3594 - round(3594 * 0.1) and all(e["samples"] == train_files for e in log)
    pids = [sorted(e["workers"]) for e in log]
    assert len(pids[0]) == 2 and pids[0] == pids[1] == pids[2], pids  # persistent: the same two workers
    for pid in pids[0]:
        first, last = log[0]["workers"][pid], log[2]["workers"][pid]
        assert last < first * 1.10, (pid, first, last)
        assert last - first < 16 * 1024, (pid, first, last)  # KiB; about 0.03 MiB measured on 2 cores


# ----------------------------------------------------------------------------- 6. bad data


def _one_error_line(text: str) -> str:
    lines = [ln for ln in text.splitlines() if ln.strip()]
    assert len(lines) == 1, text
    assert "Traceback" not in text and "DataLoader worker" not in text, text
    return lines[0]


def _corrupt_png_body(path: Path) -> None:
    """XOR 32 bytes of the first IDAT chunk's compressed data: the header still reads."""
    data = bytearray(path.read_bytes())
    at = data.index(b"IDAT") + 4
    for k in range(at, min(at + 32, len(data) - 16)):
        data[k] ^= 0x5A
    path.write_bytes(bytes(data))


BAD = {
    "empty class folder": ("{classes}/extra", r"class folder {classes}/extra holds no images"),
    "non-image file": ("{classes}/3/notes.txt", r"{classes}/3/notes.txt is not an image \(suffix '\.txt'"),
    # a file the spec check does not sample (it reads 4 spread headers per class): the scan finds it
    "other size": ("{classes}/4/0004a.png", r"{classes}/4/0004a.png is 9x7 pixels \(height 7, width 9\)"),
    "label count": ("y.npy", r"{d}/y.npy holds 1,796 labels but {d}/x.npy has 1,797 rows"),
    "class count": (None, r"the data has 10 classes \(0, 1, 2, 3, 4, 5, 6, 7 \.\.\.\) but the model has 9 outputs"),
    # integer labels (no class names): the step failed on label 9, exit 2, before feed.check_classes checked them
    "label range": (None, r"labels out of range: found labels 0\.\.9 but the model outputs 9 classes"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_data_is_one_line_and_no_run_folder(digits_tree, tmp_path, capfd, case):
    """Found before the run starts: exit 1, one stderr line (through capfd: file descriptors, so a
    worker's output would show) naming the file, no traceback, and no run folder left."""
    from PIL import Image

    what, pattern = BAD[case]
    if case in ("label count", "label range"):
        _, y = write_digits_npy(tmp_path)
        spec = tmp_path / "spec.yaml"
        spec.write_text(small("./x.npy\n    labels: ./y.npy", "[]"))
        if case == "label count":
            np.save(y, np.load(y)[:-1])
        else:
            spec.write_text(spec.read_text().replace("linear: 10", "linear: 9"))
    else:
        spec = folder_case(tmp_path, digits_tree, small("./digits", "[]"))
        target = Path(what.format(classes=tmp_path / "digits")) if what else None
        if case == "empty class folder":
            target.mkdir()
        elif case == "non-image file":
            target.write_text("not an image\n")
        elif case == "other size":
            Image.new("L", (9, 7), 128).save(target)
        else:
            spec.write_text(spec.read_text().replace("linear: 10", "linear: 9"))
    capfd.readouterr()
    code, out, err = run_cli("train", spec, "-o", tmp_path / "run", "-q")
    captured = capfd.readouterr()
    assert code == 1, out + err
    line = _one_error_line(err + captured.err)
    assert out + captured.out == ""
    assert line.startswith("error: data ("), line
    assert re.search(pattern.format(classes=re.escape(str(tmp_path / "digits")), d=re.escape(str(tmp_path))), line), (
        line
    )
    assert not (tmp_path / "run").exists()


def test_other_size_sampled_by_the_check_is_a_diagnostic(digits_tree, tmp_path, capfd):
    """The first file of a class folder is among those the compile-time check samples: a file of
    another size there is the spec diagnostic at train.data.source (several lines, as every
    diagnostic), naming the file and its size, exit 1, no traceback, no run folder."""
    from PIL import Image

    spec = folder_case(tmp_path, digits_tree, small("./digits", "[]"))
    bad = tmp_path / "digits" / "4" / "0004.png"
    Image.new("L", (9, 7), 128).save(bad)
    capfd.readouterr()
    code, out, err = run_cli("train", spec, "-o", tmp_path / "run", "-q")
    text = out + err + capfd.readouterr().err
    assert code == 1, text
    assert "Traceback" not in text
    assert "error[data]: train.data.source: 4/0004.png is 9x7 pixels (height 7, width 9)" in text
    assert f"({bad})" in text
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("workers", [0, 2])
def test_corrupt_png_found_while_training_is_one_line(digits_tree, tmp_path, capfd, workers):
    """A PNG whose header reads but whose pixels do not decode passes the folder scan and fails in
    the worker that loads it: exit 1 and one line naming the file (not the DataLoader's "Caught
    DataError in DataLoader worker process 0 ... Original Traceback" dump, which netspec printed as
    an internal error, exit 2, before netspec/data/stream.py carried the message as data). The
    run, which failed before its first checkpoint, says so in status.json, and the same command
    replaces it once the file is fixed."""
    text = small("./digits", FOLDER_AUG, workers).replace("checkpoint_every_steps: 5", "checkpoint_every_steps: 0")
    spec = folder_case(tmp_path, digits_tree, text)
    st = load_data(open_spec(spec), tmp_path)
    bad = Path(st.sets["train"].name(int(st.index["train"][100])))  # read in epoch 1, before any checkpoint
    good = bad.read_bytes()
    _corrupt_png_body(bad)
    run = tmp_path / "run"
    capfd.readouterr()
    code, out, err = run_cli("train", spec, "-o", run, "-q")
    captured = capfd.readouterr()
    assert code == 1, out + err + captured.err
    line = _one_error_line(err + captured.err)
    assert line.startswith(f"error: data: {bad}: cannot decode the image: "), line
    status = json.loads((run / "status.json").read_text())
    assert status["status"] == "failed" and status["error"] == line.removeprefix("error: ")
    assert not (run / "checkpoints" / "last.pt").exists() and not (run / "weights.pt").exists()

    bad.write_bytes(good)
    out = train_in_process(spec, run, "--max-steps", 3)
    assert "replacing its run, which failed before its first checkpoint" in out


def test_on_bad_file_skip_counts_the_files_and_trains(digits_tree, tmp_path):
    """A text file and a file named .png holding no image: with on_bad_file: skip both are counted
    and named, the 1,797 images train, and the data line counts the images alone."""
    text = small("./digits", FOLDER_AUG).replace("    loader:", "    on_bad_file: skip\n    loader:")
    spec = folder_case(tmp_path, digits_tree, text)
    (tmp_path / "digits" / "3" / "notes.txt").write_text("hello\n")
    (tmp_path / "digits" / "5" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    out = train_in_process(spec, tmp_path / "run", "--max-steps", 3)
    skipped = next(ln for ln in out.splitlines() if ln.startswith("skipped"))
    assert skipped.startswith("skipped 2 file(s)") and "notes.txt" in skipped and "broken.png" in skipped
    assert "data: 1,797 images, 10 classes (" in out
    assert sum(json.loads((tmp_path / "run" / "data.json").read_text())["samples"].values()) == 1797


# ----------------------------------------------------------------------------- 7. the data line


def test_the_data_line(digits_tree, tmp_path):
    """`netspec train` (a subprocess: its real stdout and stderr) prints the folder's image and
    class counts, the split sizes data.json records, and the worker count."""
    data = "{source: ./digits, test_fraction: 0.2, val_fraction: 0, loader: {workers: 2}}"
    spec = folder_case(tmp_path, digits_tree, digits_cnn(data, epochs=1))
    proc = netspec_train(spec, "-o", tmp_path / "run", "--max-steps", 2)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    samples = json.loads((tmp_path / "run" / "data.json").read_text())["samples"]
    assert samples["val"] == 0 and samples["train"] + samples["test"] == 1797
    line = f"data: 1,797 images, 10 classes (train {samples['train']:,} / test {samples['test']:,}), 2 workers"
    assert line in (proc.stdout + proc.stderr).splitlines(), proc.stdout + proc.stderr
