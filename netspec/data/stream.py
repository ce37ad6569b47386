"""The batch source of data that is read as it trains: image folders, memory-mapped .npy files,
and any set with declared augmentation. The loop asks each split for `batches(order, start, bs,
epoch)` (in-memory splits answer the same call by slicing device tensors, runtime/loop.py).

Determinism: which samples form batch b of epoch e is the loop's order, a function of (seed, e)
over global indices; every random number a transform draws comes from torch's generator seeded
with (seed, e, sample index), in whichever worker process the sample lands, and mixup/cutmix draw
from (seed, e, batch index). So batches do not depend on `workers` or on the world size, and a run
resumed at step k of an epoch builds exactly the batches an uninterrupted run would have from step
k on: no fast-forwarding through the data, no loader state to save. The DataLoader gets its own
generator, so creating one never draws from the global generator that dropout uses.

Memory: a worker holds the split's sample set (numpy arrays of paths and labels, or a memory map)
and no per-sample Python objects, so reading does not touch reference counts page by page (the
copy-on-read growth of workers that index a Python list).
"""

from __future__ import annotations

import os

import numpy as np
import torch
from torch.utils.data import default_collate

from ..runtime.datasets import DataError
from ..runtime.loop import TrainError

_MASK = (1 << 63) - 1


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """A 63-bit seed for (seed, epoch, index): splitmix64 over the three, so neighbouring indices
    and epochs get unrelated streams."""
    z = 0
    for part in (seed, epoch, index):
        z = (z + (part & 0xFFFFFFFFFFFFFFFF) + 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
        z ^= z >> 31
    return z & _MASK


class Keyed(torch.utils.data.Dataset):
    """Sample `(epoch, j)` of a split: item index[j] of the sample set, through the split's
    per-sample transform, seeded by (seed, epoch, item) when the transform is random."""

    def __init__(self, samples, index, transform, seed, random):
        self.samples, self.index, self.transform, self.seed, self.random = samples, index, transform, seed, random

    def __len__(self):
        return len(self.index)

    def __getitem__(self, key):
        epoch, j = key
        item = int(self.index[j])
        try:
            x = self.samples.load(item)
        except DataError as exc:  # a corrupt file: its message travels as data, not as a worker's traceback
            return Unreadable(str(exc))
        if self.transform is not None:
            if self.random:
                # fork_rng: in the main process (workers: 0) dropout's stream stays untouched. The CPU
                # generator alone: torch.manual_seed also reseeds every GPU (and, before CUDA is up,
                # records three stack traces for that: ~130 us a sample).
                with torch.random.fork_rng(devices=[]):
                    torch.default_generator.manual_seed(sample_seed(self.seed, epoch, item))
                    x = self.transform(x)
            else:
                x = self.transform(x)
        return x, torch.as_tensor(self.samples.labels[item])


class Unreadable:
    """A sample whose file could not be read, in place of (x, y): the DataError's message."""

    def __init__(self, message: str):
        self.message = message


class SampleError(TrainError, DataError):
    """A file that fails to load while the run reads it: the user's to fix, one line naming it."""


def collate(items):
    """default_collate, or the first unreadable sample of the batch (the DataLoader re-raises a
    worker's exception with its whole traceback as the message, which is no message for a user)."""
    bad = next((it for it in items if isinstance(it, Unreadable)), None)
    return bad if bad is not None else default_collate(items)


class EpochBatches(torch.utils.data.Sampler):
    """The batches of one pass, set by the loop before it iterates (so persistent workers live on
    from epoch to epoch): each a list of (epoch, position) keys, made when the loader asks for it
    from the pass's order, held as one int64 array (a list of every key of a 1M-sample epoch cost
    the main process 100 MB, and every worker forked after it a copy)."""

    def __init__(self):
        self.set(np.zeros(0, dtype=np.int64), 0, 1, -1)

    def set(self, order, start, bs, epoch):
        self.order, self.start, self.bs, self.epoch = np.asarray(order, dtype=np.int64), start, bs, epoch

    def __iter__(self):
        for k in range(self.start * self.bs, len(self.order), self.bs):
            yield [(self.epoch, int(j)) for j in self.order[k : k + self.bs]]

    def __len__(self):
        return max(0, -(-(len(self.order) - self.start * self.bs) // self.bs))


def worker_count(setting, streamed: bool) -> int:
    """loader.workers: an int as given; auto: none for in-memory data, else up to 4, leaving one of
    this process's cores (shared among torchrun's local processes) to the training steps."""
    if setting != "auto":
        return int(setting)
    if not streamed:
        return 0
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    cores //= max(1, int(os.environ.get("LOCAL_WORLD_SIZE", 1)))
    return max(0, min(4, cores - 1))


class StreamSplit:
    """One split read through DataLoader workers."""

    def __init__(self, samples, index, pipeline, *, seed, loader, device):
        self.samples, self.index = samples, np.asarray(index, dtype=np.int64)
        self.pipeline, self.seed, self.device = pipeline, seed, torch.device(device)
        self.workers = worker_count(loader["workers"], True)
        pin = loader["pin_memory"]
        self.pin = self.device.type == "cuda" if pin == "auto" else bool(pin) and torch.cuda.is_available()
        self.dataset = Keyed(samples, self.index, pipeline.sample, seed, pipeline.random)
        self.sampler = EpochBatches()
        self.loader = torch.utils.data.DataLoader(
            self.dataset,
            batch_sampler=self.sampler,
            num_workers=self.workers,
            prefetch_factor=loader["prefetch"] if self.workers else None,
            persistent_workers=bool(loader["persistent"]) and self.workers > 0,
            pin_memory=self.pin,
            collate_fn=collate,
            generator=torch.Generator(),  # its own: an iterator's base seed never draws from dropout's stream
        )

    def __len__(self):
        return len(self.index)

    @property
    def labels(self):
        return np.asarray(self.samples.labels)[self.index]

    def batches(self, order, start, bs, epoch=None):
        """(x, y, lengths) on the device for batches start, start+1, ... of `order` (positions in
        this split). `epoch` None: evaluation (deterministic transforms)."""
        key = -1 if epoch is None else epoch
        self.sampler.set(order, start, bs, key)
        for b, batch in enumerate(self.loader, start=start):
            if isinstance(batch, Unreadable):
                raise SampleError(f"data: {batch.message}")
            x, y = batch
            x = x.to(self.device, non_blocking=self.pin)
            y = y.to(self.device, non_blocking=self.pin)
            if self.pipeline.batch is not None:
                with torch.random.fork_rng(devices=[]):
                    torch.default_generator.manual_seed(sample_seed(self.seed, key, -1 - b))
                    x, y = self.pipeline.batch(x, y)
            yield x, y, None

    def describe(self) -> str:
        return f"{self.workers} worker{'s' * (self.workers != 1)}"
