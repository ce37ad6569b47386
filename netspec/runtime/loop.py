"""The training loop of `netspec train`, and verbatim of the generated train.py.

One source of truth: netspec runs this module, and `netspec build` copies its source (with the
atomic-write helpers) into train.py, so the two cannot drift. It therefore needs only torch, numpy
and the standard library. It reads top to bottom: set-up, resume, epochs of steps, evaluation,
checkpoints, the final report.

Reproducibility: the data order of epoch e comes from DistributedSampler seeded with (seed, e),
so it needs no saved state; dropout and other randomness use torch's global RNG, whose state is
saved in every checkpoint together with the model, optimizer, schedule, grad scaler, early-stopping
state and the partial sums of an interrupted epoch. Resuming from any checkpoint therefore
continues bit for bit (on CPU) as if the run had never stopped.

Faults: a kill at any moment leaves the last complete checkpoint (atomic writes, prev.pt while
last.pt is replaced); the first Ctrl-C stops after the current step with a checkpoint (the second
stops at once); a diverged loss or weights stop the run and never overwrite a good checkpoint.

Speed: a step reads nothing back from the device (batches are sliced from tensors already there,
with the epoch's order uploaded once; the metrics are running sums on the device), so a GPU never
waits for the host. train.compile, train.channels_last and train.threads change how fast, not
what: compiled steps draw the same dropout masks, and checkpoints hold the plain module's weights.
"""

import hashlib
import io
import json
import math
import os
import random
import re
import signal
import threading
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .atomic import atomic_write_bytes, atomic_write_text  # netspec-only

CHECKPOINT_FORMAT = 1


class TrainError(Exception):
    """A problem the user can fix (bad resume, device, data): reported without a traceback."""


class Interrupted(SystemExit):
    """The run stopped on a signal after writing a checkpoint: a SystemExit with code 130 (SIGINT,
    Ctrl-C) or 143 (SIGTERM, a scheduler's preemption), a shell's codes for them: train.py, which
    does not catch it, ends with that code and no traceback."""


EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}


class StopOnSignals:
    """While the steps run, the first SIGINT (Ctrl-C) or SIGTERM (a scheduler preempting the job,
    torchrun's agent passing either on) only sets `signum`: the loop then stops at the end of a
    step with a checkpoint, instead of dying wherever the signal lands. Under torchrun every rank
    takes part in a vote each step (StopVote), so that all of them stop after the same step.

    A second SIGINT raises KeyboardInterrupt at once, as Python's default handler does (torchrun
    starts its workers in sessions of their own, so a terminal's Ctrl-C reaches them once, passed on
    by the agent). Further SIGTERMs are ignored: SLURM sends one to every process of a job step and
    torchrun's agent another; the agent's SIGKILL after its grace period (30 s) is the hard stop.

    Installed only in the main thread (signal handlers can be set nowhere else) and only when
    asked; a signal that was ignored stays ignored. The previous handlers come back on the way out,
    also on errors.
    """

    def __init__(self, enabled=True):
        self.enabled = enabled and threading.current_thread() is threading.main_thread()
        self.signum = None
        self.previous = {}

    @property
    def requested(self):
        return self.signum is not None

    def _handler(self, signum, frame):
        if self.signum is None:
            self.signum = signum  # only a flag: printing from a handler can break a print it interrupted
        elif signum == signal.SIGINT:
            raise KeyboardInterrupt

    def __enter__(self):
        if self.enabled:
            for sig in (signal.SIGINT, signal.SIGTERM):
                previous = signal.getsignal(sig)
                # SIG_IGN: the user (nohup, a shell's `&`) asked for the signal to do nothing; None: a
                # handler installed outside Python, which could not be restored afterwards.
                if previous in (signal.SIG_IGN, None):
                    continue
                self.previous[sig] = previous
                signal.signal(sig, self._handler)
        return self

    def __exit__(self, *exc):
        for sig, previous in self.previous.items():
            signal.signal(sig, previous)
        self.previous = {}
        return False


StopOnSigint = StopOnSignals  # its name before SIGTERM was handled too


class StopVote:
    """Every rank's stop request, agreed on by all of them: each step every rank puts its own (the
    signal number, or 0) into an all_reduce(MAX) that runs while the next step computes, and reads
    the previous step's answer; so all ranks see the same answer after the same step, one step after
    the signal, and no step waits for the network. The flags travel on a CPU (gloo) group, also
    beside NCCL, so that reading the answer never waits for the GPU. One process needs no vote."""

    def __init__(self, world):
        self.world, self.pending, self.group = world, None, None
        if world > 1:
            group = torch.distributed.new_group(backend="gloo")  # its own: never queued behind DDP's
            self.group = group if isinstance(group, torch.distributed.ProcessGroup) else None

    def poll(self, local):
        """The agreed signal number (0: go on) for a stop after this step."""
        if self.world == 1:
            return local or 0
        agreed = self.finish()
        flag = torch.tensor([local or 0], dtype=torch.int32)
        work = torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX, group=self.group, async_op=True)
        self.pending = (work, flag)
        return agreed

    def finish(self):
        """The answer of the vote in flight (0 when none)."""
        if self.pending is None:
            return 0
        work, flag = self.pending
        if work is not None:
            work.wait()
        self.pending = None
        return int(flag.item())


# ----------------------------------------------------------------------------- set-up


def dist_env():
    """(rank, world size, local rank) from torchrun's environment; (0, 1, 0) when run plainly."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)), int(os.environ.get("LOCAL_RANK", 0))


PEERS = []  # (host, pid) of every rank, gathered when the process group starts: failures name them


def init_distributed(cfg, device):
    """Join torchrun's process group (gloo on the CPU, nccl on GPUs) with train.distributed.timeout
    on every collective, and note each rank's host and pid (PEERS). A no-op for one process or when
    the group is up already (netspec starts it before the run directory is touched)."""
    world = dist_env()[1]
    if world == 1 or torch.distributed.is_initialized():
        return
    from datetime import timedelta

    die_with_parent()
    timeout = timedelta(seconds=(cfg.get("distributed") or {}).get("timeout", 300))
    if device.type == "cuda":
        torch.cuda.set_device(device)
    backend = "nccl" if device.type == "cuda" else "gloo"
    restart = os.environ.get("TORCHELASTIC_RESTART_COUNT")
    if restart is None:
        torch.distributed.init_process_group(backend, timeout=timeout)
    else:
        # Under torchrun the store may outlive a restart (its c10d rendezvous keeps the agent's): the
        # workers of restart k then read the addresses the dead ones of restart k-1 left in it, and
        # gloo's connect fails. Keys of their own per restart make every restart start clean.
        from torch.distributed.distributed_c10d import PrefixStore
        from torch.distributed.rendezvous import rendezvous

        store, rank, size = next(rendezvous("env://", timeout=timeout))
        store = PrefixStore(f"netspec/restart{restart}", store)
        torch.distributed.init_process_group(backend, store=store, rank=rank, world_size=size, timeout=timeout)
    import socket

    peers: list = [None] * world
    torch.distributed.all_gather_object(peers, (socket.gethostname(), os.getpid()))
    PEERS[:] = peers


def die_with_parent():
    """A worker started by torchrun's agent gets SIGTERM when the agent dies, however it dies
    (Linux's prctl PR_SET_PDEATHSIG, asked through ctypes): a killed agent used to leave its workers
    training unseen. SIGTERM, not SIGKILL: the workers then stop as on a preemption, all after the
    same step with one checkpoint, so a killed agent loses nothing. The kernel sends it on the death
    of the thread that forked the worker, which in torchrun is the agent's main thread. Elsewhere
    (not Linux, not under torchrun) nothing is done."""
    import sys

    if not sys.platform.startswith("linux") or "TORCHELASTIC_RUN_ID" not in os.environ:
        return
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(1, int(signal.SIGTERM), 0, 0, 0) != 0:  # 1: PR_SET_PDEATHSIG
            return
    except (OSError, AttributeError):
        return
    if os.getppid() == 1:  # the agent died before the request was made: nobody would restart or watch us
        raise TrainError("torchrun's agent exited before this worker started; start the job again")


def thread_count(setting, local_processes, cores):
    """CPU threads for this process (train.threads), or None to keep torch's default.

    An int is taken as given. auto keeps torch's default for a single process; under torchrun
    (local_processes > 1) the cores this process may run on are shared among the processes of this
    machine, at least one each: 2 processes on 2 cores get 1 thread each, not 2 (oversubscribed),
    and 2 on 16 cores get 8, not torchrun's default of 1.
    """
    if setting != "auto":
        return int(setting)
    if local_processes <= 1:
        return None
    return max(1, cores // local_processes)


def available_cores():
    """The cores this process may run on (its affinity mask, e.g. under taskset or a container)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@contextmanager
def num_threads(n):
    """Run with n CPU threads and restore the previous count on the way out (fit() can run inside
    a longer-lived process, e.g. a test session). None: leave the count alone."""
    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if n is not None:
            torch.set_num_threads(before)


def pick_device(name, local_rank):
    if name == "cuda" or (name == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise TrainError("device: cuda was asked for, but no CUDA device is available; use device: auto or cpu")
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


def run_device(cfg, local_rank):
    """The device train.device picks, and whether train.precision can run on it: a TrainError
    before anything is allocated (netspec asks before it writes the run's files)."""
    device = pick_device(cfg["device"], local_rank)
    if cfg["precision"] == "fp16" and device.type != "cuda":
        raise TrainError("precision fp16 needs a CUDA device; use bf16 on the CPU")
    return device


def seed_everything(seed, deterministic):
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        # That also fills every new uninitialized tensor with NaN, a debugging aid that cost 2-8%
        # of a step here (the LSTM most); netspec's layers never read memory they did not write.
        torch.utils.deterministic.fill_uninitialized_memory = False  # pyright: ignore[reportAttributeAccessIssue]  (a property of the module class, which the stubs lack)
        torch.backends.cudnn.benchmark = False


def wants_channels_last(setting, device, helps):
    """train.channels_last: auto means on CUDA for a model with layers that run faster so (`helps`:
    netspec asks each layer's OpDef.channels_last, 2-D convolutions), off on the CPU (measured no
    faster there); true / false force it (only 4-D weights change format)."""
    if setting == "auto":
        return device.type == "cuda" and helps
    return bool(setting)


def compiled(model):
    """torch.compile for the training steps only: the returned module shares the parameters of
    `model`, which stays the plain module for checkpoints, weights.pt and evaluation (so the keys
    have no `_orig_mod.` prefix, and evaluation triggers no recompilation)."""
    import torch._inductor.config as inductor_config

    # Random ops (dropout) draw from torch's own generator, as in eager mode: the masks are those of
    # an uncompiled run and their RNG state is the one every checkpoint saves.
    inductor_config.fallback_random = True
    return torch.compile(model)


def make_optimizer(cfg, params):
    o = cfg["optimizer"]
    name, lr, wd = o["name"], o["lr"], o["weight_decay"]
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=o["momentum"], nesterov=o["nesterov"], weight_decay=wd)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, betas=tuple(o["betas"]), weight_decay=wd)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, betas=tuple(o["betas"]), weight_decay=wd)
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, momentum=o["momentum"], weight_decay=wd)
    raise TrainError(f"unknown optimizer {name!r}")


def make_loss(cfg):
    loss = cfg["loss"]
    if loss["name"] == "cross_entropy":
        smoothing = loss["label_smoothing"]
        return lambda out, y: F.cross_entropy(out, y, label_smoothing=smoothing)
    if loss["name"] == "mse":
        return lambda out, y: F.mse_loss(out, y.view_as(out))
    if loss["name"] == "bce_with_logits":
        return lambda out, y: F.binary_cross_entropy_with_logits(out, y.view_as(out).to(out.dtype))
    raise TrainError(f"unknown loss {loss['name']!r}")


class Schedule:
    """lr = base lr x warmup(step) x shape(step) x plateau scale, set before every step.

    All its state is plain numbers, saved in the checkpoint; no torch scheduler objects.
    """

    def __init__(self, cfg, optimizer, steps_per_epoch, epochs):
        self.cfg = cfg["schedule"]
        self.optimizer = optimizer
        self.base = [g["lr"] for g in optimizer.param_groups]
        self.steps_per_epoch = steps_per_epoch
        self.total = max(1, steps_per_epoch * epochs)
        self.warmup = self.cfg["warmup_epochs"] * steps_per_epoch
        self.state = {"scale": 1.0, "best": None, "bad_epochs": 0}

    def factor(self, step):
        s, name = self.cfg, self.cfg["name"]
        warm = min(1.0, (step + 1) / self.warmup) if self.warmup else 1.0
        t = min(1.0, max(0, step - self.warmup) / max(1, self.total - self.warmup))
        floor = s["min_lr_ratio"]
        if name == "cosine":
            shape = floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * t))
        elif name == "step":
            shape = s["gamma"] ** (step // (s["step_size"] * self.steps_per_epoch))
        elif name == "onecycle":  # rise for pct_start of the run, then cosine down to floor
            p = s["pct_start"]
            frac = step / self.total
            if frac < p:
                shape = 0.04 + 0.96 * 0.5 * (1 - math.cos(math.pi * frac / p))
            else:
                shape = floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * (frac - p) / (1 - p)))
            warm = 1.0
        else:  # constant and plateau
            shape = 1.0
        return warm * shape * self.state["scale"]

    def apply(self, step):
        f = self.factor(step)
        for g, base in zip(self.optimizer.param_groups, self.base, strict=False):
            g["lr"] = base * f

    def epoch_end(self, value, mode):
        """ReduceLROnPlateau, done here so its state lives with the rest."""
        if self.cfg["name"] != "plateau" or value is None:
            return
        best = self.state["best"]
        better = best is None or (value < best if mode == "min" else value > best)
        if better:
            self.state["best"], self.state["bad_epochs"] = value, 0
            return
        self.state["bad_epochs"] += 1
        if self.state["bad_epochs"] > self.cfg["patience"]:
            self.state["scale"] *= self.cfg["factor"]
            self.state["bad_epochs"] = 0

    def lr(self):
        return self.optimizer.param_groups[0]["lr"]


# ----------------------------------------------------------------------------- data


class Split:
    """One split as tensors on the device; batches are sliced from memory, no per-sample collate."""

    def __init__(self, x, y, lengths, device, time_axis):
        self.x = torch.as_tensor(x).to(device)
        self.y = torch.as_tensor(y).to(device)
        self.lengths = None if lengths is None else torch.as_tensor(lengths).to(device)
        # A host copy: each batch's longest series is found without reading the device.
        self.host_lengths = None if lengths is None else np.asarray(lengths)
        self.time_axis = time_axis  # axis of the padded time dim in x (with the batch), or None

    def __len__(self):
        return len(self.y)

    def batch(self, idx, host_idx):
        """The samples at `idx`, a tensor of indices on the split's device (an epoch's order is
        copied there once: a list would be uploaded every step, and a blocking copy to a GPU waits
        for the steps queued before it); `host_idx` holds the same indices on the host."""
        x, y = self.x.index_select(0, idx), self.y.index_select(0, idx)
        if self.lengths is None or self.host_lengths is None or self.time_axis is None:
            return x, y, None
        lengths = self.lengths.index_select(0, idx)
        # Pad per batch: cut the padding beyond the longest series in this batch.
        x = x.narrow(self.time_axis, 0, int(self.host_lengths[host_idx].max()))
        return x, y, lengths

    @property
    def labels(self):
        return self.y.cpu().numpy()

    def batches(self, order, start, bs, epoch=None):
        """(x, y, lengths) of batches start, start+1, ... of `order` (this split's sample indices):
        the batch-source interface that streamed splits (netspec/data/stream.py) answer too."""
        order_dev = torch.as_tensor(order, dtype=torch.long).to(self.y.device)  # one upload per pass
        for k in range(start * bs, len(order), bs):
            yield self.batch(order_dev[k : k + bs], order[k : k + bs])


def epoch_order(n, epoch, seed, rank, world, shuffle=True):
    """This rank's sample indices for one epoch. The epoch's global order is a permutation seeded by
    (seed, epoch) alone (DistributedSampler's), and global batch b is its positions b x G ... (b+1)
    x G - 1 for a global batch of G samples, whatever the number of processes: rank r takes every
    world-th of them from position r (perm[r::world]), so its batches are bs = G / world each and
    only the last global batch may be short, its shares differing by one (or empty). Nothing is
    padded or repeated: a run resumed on another number of processes sees the same batches."""
    if shuffle:
        g = torch.Generator()
        g.manual_seed(seed + epoch)
        perm = torch.randperm(n, generator=g).numpy()
    else:
        perm = np.arange(n)
    # One int64 array, not a list of a million ints (which DataLoader workers forked later would copy).
    return np.ascontiguousarray(perm[rank::world], dtype=np.int64)


def checkpoint_world(ckpt):
    """How many processes wrote a checkpoint (older ones say it by their list of RNG states)."""
    if not isinstance(ckpt, dict):
        return 1
    if isinstance(ckpt.get("world"), int):
        return ckpt["world"]
    return len(ckpt["rng"]) if isinstance(ckpt.get("rng"), list) else 1


def checkpoint_global_batch(ckpt, cfg):
    """The run's global batch: saved in the checkpoint, else (older checkpoints) batch_size x the
    processes that wrote it."""
    g = ckpt.get("global_batch") if isinstance(ckpt, dict) else None
    return g if isinstance(g, int) and g > 0 else cfg["batch_size"] * checkpoint_world(ckpt)


def per_process_batch(global_batch, world, cfg):
    """global / world, or a TrainError with the arithmetic when it is not a whole number."""
    if global_batch % world == 0:
        return global_batch // world
    small = [d for d in range(1, math.isqrt(global_batch) + 1) if global_batch % d == 0]
    divisors = sorted({*small, *(global_batch // d for d in small)})
    shown = ", ".join(map(str, divisors[:8])) + (" ..." if len(divisors) > 8 else "")
    raise TrainError(
        f"cannot resume on {world} processes: the run's global batch is {global_batch} samples (fixed when it "
        f"started: batch_size x processes; the spec says batch_size {cfg['batch_size']}), and {global_batch} / "
        f"{world} = {global_batch / world:.4g} is not a whole number of samples per process. Resume it with a "
        f"number of processes that divides {global_batch} ({shown}), or start a new run"
    )


def sample_trace(rank):
    """NETSPEC_SAMPLE_TRACE=PREFIX: each rank appends, per step, the global step and the sample
    indices of its share to PREFIX.RANK (the tests compare sample orders across world sizes with
    it); None when unset."""
    prefix = os.environ.get("NETSPEC_SAMPLE_TRACE")
    return open(f"{prefix}.{rank}", "a", encoding="utf-8", buffering=1) if prefix else None


def fault_hook(rank):
    """NETSPEC_FAULT=SIGNAL:RANK:STEP[:parent], for the fault tests: rank RANK sends SIGNAL (e.g.
    SIGKILL, SIGTERM, SIGSTOP) to itself, or to its parent (torchrun's agent), once it has taken
    global step STEP; only in torchrun's first start, so that a restart runs clean. None when unset."""
    given = os.environ.get("NETSPEC_FAULT")
    if not given or os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") != "0":
        return None
    name, who, step, *target = given.split(":")
    return (int(step), getattr(signal, name), target == ["parent"]) if int(who) == rank else None


def stand_in(model, step_model, split, epoch, loss_fn, target, autocast, scaler):
    """A step for a rank whose share of an epoch's short last batch is empty (fewer samples than
    processes): DDP needs every rank's gradients, so sample 0 goes forward in eval mode (no
    batchnorm statistics, no dropout draw) with its loss times 0: zero gradients, nothing counted."""
    x, y, lengths = next(iter(split.batches(np.zeros(1, dtype=np.int64), 0, 1, epoch)))
    model.eval()
    try:
        with autocast():
            out = forward(step_model, x, lengths)
            loss = loss_fn(out, y if target is None else target.standardize(y))
        scaler.scale(loss * 0.0).backward()
    finally:
        model.train()


def share_weight(local, world, batch_total):
    """The factor on a rank's mean loss that makes DDP's average of the ranks' gradients the mean
    over the global batch: local x world / total (1 when every rank has an equal share)."""
    return 1.0 if local * world == batch_total else local * world / batch_total


def predicted_labels(out):
    """The one rule from outputs to class labels: the largest logit, or a single logit above 0."""
    return out.argmax(-1) if out.dim() > 1 and out.shape[-1] > 1 else (out.view(-1) > 0).long()


def partial_count(sums, world):
    """Samples already counted in this epoch before a resume (all ranks)."""
    return sums.reduced(world)[3]


def forward(model, x, lengths):
    return model(x) if lengths is None else model(x, lengths)


# ----------------------------------------------------------------------------- metrics


class Sums:
    """Running sums on the device: no host sync per step. Reduced across ranks as sums and counts.

    A step adds one in-place op per sum (the sample and value counts are host numbers): each tiny op
    costs microseconds on the CPU, and `t[k] += v` on one shared vector (a view, an add, a copy back)
    cost 88 us a step where this costs 44. The sums are bit for bit those of that vector.

    Regression sums everything in float64 from the model's outputs in the targets' own units (with
    train.data.standardize_target, un-standardized first): absolute and squared errors, and for r2
    the targets' sums and sums of squares per target column. `want` (from `sum_plan`) says which of
    them the metrics need, so that a step pays only for those.
    """

    # reduced(): [loss, correct, abs_err, count, values, sq_err, *sum_y, *sum_y2]
    names = ("loss", "correct", "abs_err", "count", "values", "sq_err", "sum_y", "sum_y2")

    def __init__(self, device, values=None, want=None):
        given = list(values) if values is not None else []
        head = given[:6] + [0.0] * (6 - len(given[:6]))  # a checkpoint of an older netspec holds 4
        if len(given) == 4:
            head[4] = head[3]  # its mae counted one value per sample
        self.want = want or {}
        loss, correct, abs_err, count, n_values, sq_err = head
        self.loss, self.correct, self.abs_err, self.sq_err = (
            torch.tensor(v, dtype=torch.float64, device=device) for v in (loss, correct, abs_err, sq_err)
        )
        self.count, self.values = count, n_values
        k = self.want.get("columns", 0)
        tail = given[6:] if len(given[6:]) == 2 * k else [0.0] * (2 * k)
        self.sum_y, self.sum_y2 = (torch.tensor(t, dtype=torch.float64, device=device) for t in (tail[:k], tail[k:]))

    def add(self, loss, out, y, task, target=None):
        """`target`: the TargetScale of standardized targets (the outputs are restored to the
        targets' units before the errors are taken), or None."""
        n = y.shape[0]
        with torch.no_grad():
            self.loss.add_(loss, alpha=n)  # in float64: loss x n is exact, as before the sum
            self.count += n
            if task == "classification":
                if y.dim() > 1 and y.is_floating_point():  # mixup/cutmix's soft targets: their largest share
                    y = y.argmax(-1)
                self.correct.add_((predicted_labels(out) == y).sum())
                return
            truth = y.view_as(out).double()
            err = (out.double() if target is None else target.restore(out)) - truth
            self.values += err.numel()
            self.abs_err.add_(err.abs().sum())
            if self.want.get("sq"):
                self.sq_err.add_(err.square().sum())
            if self.want.get("columns"):
                cols = truth.reshape(n, -1)
                self.sum_y.add_(cols.sum(0))
                self.sum_y2.add_(cols.square().sum(0))

    def reduced(self, world):
        """[loss, correct, abs_err, count, values, sq_err, *sum_y, *sum_y2] summed over the ranks, as
        Python floats (one all_reduce)."""
        dev = self.loss.device
        counts = torch.tensor([float(self.count), float(self.values)], dtype=torch.float64, device=dev)
        t = torch.cat(
            [torch.stack([self.loss, self.correct, self.abs_err]), counts, self.sq_err.view(1), self.sum_y, self.sum_y2]
        )
        if world > 1:
            torch.distributed.all_reduce(t)
        return t.tolist()

    @staticmethod
    def metrics(vals, cfg, prefix):
        """The loss and the metrics the config names (train.metrics). Regression metrics are per
        target value (mae, mse, rmse); r2 is 1 - SSE / SST with SST summed over the target columns,
        each about its own mean (scikit-learn's r2_score, multioutput="variance_weighted")."""
        loss, correct, abs_err, count = vals[:4]
        if count == 0:
            return {}
        n_values = vals[4] if len(vals) > 4 else count
        sq_err = vals[5] if len(vals) > 5 else 0.0
        out = {f"{prefix}loss": loss / count}
        wanted = cfg["metrics"]
        if "accuracy" in wanted:
            out[f"{prefix}accuracy"] = correct / count  # from integer counts, in float64
        if n_values == 0:
            return out
        if "mae" in wanted:
            out[f"{prefix}mae"] = abs_err / n_values
        if "mse" in wanted:
            out[f"{prefix}mse"] = sq_err / n_values
        if "rmse" in wanted:
            out[f"{prefix}rmse"] = math.sqrt(sq_err / n_values)
        if "r2" in wanted and len(vals) > 6:
            k = (len(vals) - 6) // 2
            sst = sum(s2 - s * s / count for s, s2 in zip(vals[6 : 6 + k], vals[6 + k :], strict=True))
            # Constant targets (sst 0): 1 for a perfect fit, else 0 (scikit-learn's force_finite).
            out[f"{prefix}r2"] = 1.0 - sq_err / sst if sst > 0 else (1.0 if sq_err == 0 else 0.0)
        return out


def sum_plan(cfg, labels_shape):
    """Which regression sums the metrics need: squared errors (mse, rmse, r2) and, for r2, the
    targets' sums per column (as many as values per sample: `labels_shape` is a split's labels')."""
    if cfg["task"] == "classification":
        return {}
    wanted = set(cfg["metrics"])
    columns = int(np.prod(labels_shape[1:], dtype=np.int64)) if "r2" in wanted else 0
    return {"sq": bool(wanted & {"mse", "rmse", "r2"}), "columns": columns}


def target_statistics(y):
    """train.data.standardize_target: the training split's targets' mean and std (population) per
    target column, in float64 from the float32 targets the model sees; a constant column's std is 1.
    netspec stores them in the run's data.json; train.py computes the same from data.npz's y_train."""
    y = np.asarray(y, dtype=np.float32).astype(np.float64)
    y = y.reshape(len(y), -1)
    if not len(y):
        raise TrainError("standardize_target: the training split has no targets")
    mean, std = y.mean(0), y.std(0)
    std[std == 0] = 1.0
    return {"mean": mean.tolist(), "std": std.tolist()}


class TargetScale:
    """Standardized regression targets: the model learns (y - mean) / std, and its outputs are
    restored to y's units (out x std + mean, in float64) for every metric, evaluation and prediction."""

    def __init__(self, stats, device):
        self.mean64 = torch.tensor(stats["mean"], dtype=torch.float64, device=device)
        self.std64 = torch.tensor(stats["std"], dtype=torch.float64, device=device)
        self.mean32, self.std32 = self.mean64.float(), self.std64.float()

    @staticmethod
    def _shaped(t, like):
        return t.view(like.shape[1:]) if like.dim() > 1 else t

    def standardize(self, y):
        return (y - self._shaped(self.mean32, y)) / self._shaped(self.std32, y)

    def restore(self, out):
        return out.double() * self._shaped(self.std64, out) + self._shaped(self.mean64, out)


@torch.no_grad()
def evaluate(model, split, cfg, loss_fn, rank, world, autocast, device, want_predictions=False, target=None, plan=None):
    """Loss and metrics over a split (sharded across ranks, reduced as sums and counts). `target`:
    the TargetScale of standardized targets (the predictions returned are then in y's units);
    `plan`: sum_plan's answer (else worked out from the split's labels)."""
    model.eval()
    sums = Sums(device, want=sum_plan(cfg, np.shape(split.labels)) if plan is None else plan)
    preds = []
    for x, y, lengths in split.batches(np.arange(rank, len(split), world), 0, cfg["batch_size"]):
        with autocast():
            out = forward(model, x, lengths)
            loss = loss_fn(out, y if target is None else target.standardize(y))
        out = out.float()
        sums.add(loss, out, y, cfg["task"], target)
        if want_predictions:
            preds.append((out if target is None else target.restore(out)).cpu())
    model.train()
    result = Sums.metrics(sums.reduced(world), cfg, "")
    if want_predictions:
        return result, (torch.cat(preds) if preds else torch.zeros(0))
    return result


def class_report(y_true, y_pred, classes):
    """Confusion matrix and per-class precision / recall / F1 from integer counts."""
    k = len(classes)
    cm = np.zeros((k, k), dtype=np.int64)
    for t, p in zip(y_true, y_pred, strict=False):
        cm[int(t), int(p)] += 1
    per_class = {}
    for i, name in enumerate(classes):
        tp = int(cm[i, i])
        fp, fn = int(cm[:, i].sum()) - tp, int(cm[i, :].sum()) - tp
        prec = tp / (tp + fp) if tp + fp else 0.0
        rec = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
        per_class[name] = {"precision": prec, "recall": rec, "f1": f1, "support": int(cm[i, :].sum())}
    return {"confusion_matrix": cm.tolist(), "per_class": per_class}


# ----------------------------------------------------------------------------- checkpoints


def _rng_state():
    state = {
        "torch": torch.get_rng_state(),
        "python": list(random.getstate()[1]),
        "python_version": random.getstate()[0],
    }
    np_state = np.random.get_state(legacy=True)
    if not isinstance(np_state, tuple):  # legacy=True: ("MT19937", keys, pos, has_gauss, cached_gaussian)
        raise TypeError(f"numpy's random state is a {type(np_state).__name__}, not the legacy tuple")
    state["numpy"] = {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2])}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state):
    torch.set_rng_state(state["torch"])
    random.setstate((state["python_version"], tuple(state["python"]), None))
    keys = state["numpy"]["keys"].numpy().astype(np.uint32)
    np.random.set_state(("MT19937", keys, state["numpy"]["pos"], 0, 0.0))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path, payload):
    """torch.save to memory, a sha256 of the bytes beside it, then one atomic write of each."""
    buf = io.BytesIO()
    torch.save(payload, buf)
    blob = buf.getvalue()
    # The old digest goes first: a kill between the two writes must not pair the new file with it
    # (a good checkpoint refused as corrupt); a file without a digest is loaded unchecked.
    Path(str(path) + ".sha256").unlink(missing_ok=True)
    atomic_write_bytes(path, blob)
    atomic_write_text(str(path) + ".sha256", hashlib.sha256(blob).hexdigest() + "\n")


def load_checkpoint(path):
    """Load with weights_only=True after checking the checksum; None when missing or corrupt."""
    path = Path(path)
    if not path.exists():
        return None, "missing"
    blob = path.read_bytes()
    digest = Path(str(path) + ".sha256")
    if digest.exists() and digest.read_text().strip() != hashlib.sha256(blob).hexdigest():
        return None, "checksum mismatch (truncated or corrupted)"
    try:
        return torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True), None
    except Exception as exc:  # a torn or foreign file: report, never execute anything
        return None, f"unreadable ({type(exc).__name__})"


def _restore(ckpt, spec_hash, model, optimizer, schedule, scaler, main_rank, rank, world, cfg):
    """Load a checkpoint's states into the run's objects; (training state, partial epoch sums)."""
    if not isinstance(ckpt, dict):
        raise TypeError(f"a {type(ckpt).__name__}, not a mapping")
    if ckpt["spec_hash"] != spec_hash:
        raise TrainError(
            "cannot resume: the spec changed since the checkpoint was written "
            f"(hash {str(ckpt['spec_hash'])[:12]} -> {spec_hash[:12]}). Start a new run, or use --init-from "
            "to start a new run from these weights."
        )
    rng = ckpt["rng"]
    states = rng if isinstance(rng, list) else [rng]  # a multi-process run saves one state per rank
    unwrap(model).load_state_dict(ckpt["model"])
    optimizer.load_state_dict(ckpt["optimizer"])
    schedule.state = dict(ckpt["schedule"])
    scaler.load_state_dict(ckpt["scaler"])
    state = dict(ckpt["state"])
    # The partial sums in a checkpoint are already reduced over all ranks: rank 0 alone carries them.
    partial = ckpt["partial"] if main_rank else None
    if rank < len(states):
        _set_rng_state(states[rank])
    else:  # a rank the run did not have before: a dropout stream of its own, seeded by where it joins
        torch.manual_seed(cfg["seed"] + 1_000_003 * rank + 7_919 * int(state["global_step"]))
    return state, partial


def unwrap(model):
    return model.module if hasattr(model, "module") else model


def finite_weights(model):
    """Whether every float tensor of the model (parameters and buffers) is finite: one host sync."""
    tensors = [t for t in unwrap(model).state_dict().values() if t.is_floating_point()]
    return not tensors or bool(torch.stack([torch.isfinite(t).all() for t in tensors]).all())


_STALE = re.compile(r"^\..+\.[A-Za-z0-9_]{8}\.tmp$")  # the temp-file names of atomic_write_bytes


def remove_stale_temps(folder):
    """Temp files of atomic writes that a kill cut short: nothing reads them, so they only take space."""
    if Path(folder).is_dir():
        for p in Path(folder).iterdir():
            if _STALE.fullmatch(p.name) and p.is_file():
                p.unlink(missing_ok=True)


# ----------------------------------------------------------------------------- reporting


class PlainReporter:
    """Epoch lines on stdout; the CLI passes a rich progress bar with the same methods instead."""

    def __init__(self, quiet=False):
        self.quiet = quiet

    def epoch_start(self, epoch, epochs, steps):
        """Plain output has no progress bar: nothing to set up per epoch."""

    def step(self, i):
        """Called every step; plain output prints per epoch only, so this costs one call."""

    def epoch_end(self, record):
        if not self.quiet:
            print(format_record(record), flush=True)

    def message(self, text):
        if not self.quiet:
            print(text, flush=True)

    def close(self):
        """Nothing to tear down."""

    def end(self, status, **fields):
        """The run's final status: status.json's business (netspec's StatusReporter), nothing to print."""


def tensorboard_writer(cfg):
    """torch's SummaryWriter class when train.log asks for tensorboard, else None. Imported only
    then: train.py needs torch and numpy alone. Every rank asks, so that all fail together."""
    if "tensorboard" not in (cfg.get("log") or ()):
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise TrainError(
            "logging to tensorboard was asked for (train.log or --log), but the tensorboard package is not "
            "installed: pip install tensorboard"
        ) from None
    return SummaryWriter


class TensorBoardReporter:
    """Passes everything on to `inner` and writes each epoch's record as scalars at global step =
    epoch (1-based), into the run's tensorboard/ folder. It opens with purge_step at the first epoch
    this process will write: TensorBoard then hides whatever an earlier process wrote from that
    epoch on (past its last checkpoint), so a resumed run shows no epoch twice."""

    def __init__(self, inner, writer_class, log_dir, first_epoch):
        self.inner = inner
        self.step = inner.step  # bound directly: no extra call per step
        self.writer = writer_class(log_dir=str(log_dir), purge_step=first_epoch)

    def epoch_start(self, epoch, epochs, steps):
        self.inner.epoch_start(epoch, epochs, steps)

    def epoch_end(self, record):
        self.inner.epoch_end(record)
        self.scalars(record, record["epoch"])
        self.writer.flush()  # once an epoch: a killed run keeps every epoch it finished

    def scalars(self, values, step, split=None):
        """Tags split/name; split None: an epoch's record, whose val_* keys go under val/, the rest
        (loss, metrics, lr, samples_per_s, epoch_time_s) under train/."""
        for key, value in values.items():
            if key in ("epoch", "epochs") or isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            where, name = split, key
            if where is None:
                where, name = ("val", key[4:]) if key.startswith("val_") else ("train", key)
            self.writer.add_scalar(f"{where}/{'epoch_time_s' if name == 'time' else name}", value, step)

    def message(self, text):
        self.inner.message(text)

    def close(self):
        self.inner.close()
        self.writer.flush()

    def finish(self, results):
        """The final test metrics at the last epoch's step, then close the event file."""
        if results.get("test"):
            self.scalars(results["test"], results["epochs_run"], "test")
        self.writer.close()


def format_record(r):
    parts = [f"epoch {r['epoch']:>3}/{r['epochs']}"]
    for k in ("loss", "accuracy", "mae", "rmse", "r2", "val_loss", "val_accuracy", "val_mae", "val_rmse", "val_r2"):
        if k in r:
            parts.append(f"{k} {r[k]:.4f}")
    parts.append(f"lr {r['lr']:.3g}")
    parts.append(f"{r['samples_per_s']:.0f} samples/s")
    parts.append(f"{r['time']:.1f}s")
    return "  ".join(parts)


# ----------------------------------------------------------------------------- early stopping


def monitor_mode(monitor):
    """auto's direction: higher is better for accuracy and r2, lower for the loss and the errors."""
    return "max" if "accuracy" in monitor or monitor.endswith("r2") else "min"


class EarlyStop:
    """The monitored metric (train.early_stopping's, else val_loss, or loss without a validation
    split), the best epoch so far, and when to stop. Its counters live in the loop's `state`, which
    every checkpoint saves."""

    def __init__(self, cfg, has_val):
        self.es = cfg["early_stopping"]
        es = self.es
        self.monitor = es["monitor"] if es else ("val_loss" if has_val else "loss")
        self.mode = (es["mode"] if es and es["mode"] != "auto" else None) or monitor_mode(self.monitor)
        self.min_delta = es["min_delta"] if es else 0

    def update(self, state, value, epoch):
        """Record the epoch's monitored value; True when it is the best so far."""
        best = state["best"]
        improved = value is not None and (
            best is None or (value < best - self.min_delta if self.mode == "min" else value > best + self.min_delta)
        )
        if improved:
            state["best"], state["best_epoch"], state["bad_epochs"] = value, epoch, 0
        else:
            state["bad_epochs"] += 1
        if self.es and state["bad_epochs"] > self.es["patience"]:
            state["stopped_early"] = True
        return improved

    def restores(self, state):
        return bool(state["stopped_early"] and self.es and self.es["restore_best"])


# ----------------------------------------------------------------------------- checkpoint files


def write_checkpoint(ckpt_dir, name, payload):
    """Save `name` (last.pt keeps the file it replaces as prev.pt, in case this write is torn)."""
    path = ckpt_dir / name
    if name == "last.pt" and path.exists():
        # Drop prev's digest first: a kill between the two renames must not leave prev.pt beside
        # the digest of an older file (a good checkpoint refused as corrupt). A digest is optional.
        prev = ckpt_dir / "prev.pt"
        Path(str(prev) + ".sha256").unlink(missing_ok=True)
        os.replace(path, prev)
        if Path(str(path) + ".sha256").exists():
            os.replace(str(path) + ".sha256", str(prev) + ".sha256")
    save_checkpoint(path, payload)


def resume_checkpoint(ckpt_dir, reporter):
    """last.pt, or prev.pt when last.pt is torn or corrupt (said so); TrainError when neither loads."""
    ckpt, err = load_checkpoint(ckpt_dir / "last.pt")
    if ckpt is None and (ckpt_dir / "prev.pt").exists():
        ckpt, err2 = load_checkpoint(ckpt_dir / "prev.pt")
        if ckpt is not None:
            reporter.message(f"warning: checkpoints/last.pt is {err}; resuming from the previous good one (prev.pt)")
        else:
            err = f"{err}; prev.pt: {err2}"
    if ckpt is None:
        raise TrainError(f"cannot resume from {ckpt_dir / 'last.pt'}: {err}")
    return ckpt


# ----------------------------------------------------------------------------- the final report


def final_results(
    model, splits, cfg, loss_fn, rank, world, autocast, device, classes, state, monitor, target=None, plan=None
):
    """results.json's content: the run's outcome, then the final model on val and test (with a
    confusion matrix and per-class scores for classification, up to 1,000 classes)."""
    results = {
        "epochs_run": state["epoch"],
        "stopped_early": state["stopped_early"],
        "monitor": monitor,
        "best": state["best"],
        "best_epoch": state["best_epoch"],
    }
    for s in ("val", "test"):
        if len(splits[s]):
            m, out = evaluate(model, splits[s], cfg, loss_fn, rank, world, autocast, device, True, target, plan)
            results[s] = m
            if s == "test" and cfg["task"] == "classification" and classes and len(classes) <= 1000 and world == 1:
                results["test"].update(class_report(splits[s].labels, predicted_labels(out).numpy(), classes))
    return results


def write_results(run_dir, model, results, metrics_path):
    """weights.pt, results.json and metrics.csv (rank 0)."""
    buf = io.BytesIO()
    torch.save(unwrap(model).state_dict(), buf)
    atomic_write_bytes(run_dir / "weights.pt", buf.getvalue())
    atomic_write_text(run_dir / "results.json", json.dumps(results, indent=2) + "\n")
    write_csv(metrics_path, run_dir / "metrics.csv")


# ----------------------------------------------------------------------------- the loop


def fit(model, data, cfg, run_dir, **options):
    """Train `model` on `data` (dict of numpy arrays x_train, y_train, ...) as `cfg` says.

    Writes metrics.jsonl / metrics.csv, checkpoints/last.pt and best.pt, weights.pt and
    results.json into run_dir (rank 0 only); with train.log [tensorboard] also tensorboard/. Returns the results dict. With max_steps, stops
    (after a checkpoint) once this invocation has taken that many optimizer steps. Options:
    spec_hash, resume, init_from, reporter, max_steps, time_axis, classes, resume_hint (how to
    continue, printed when the run stops with a checkpoint), data_fingerprint (a resume on other
    data is refused), target_stats (train.data.standardize_target's statistics; else computed here
    from the training split's targets). `data` may instead map train/val/test to batch sources (streamed data).

    Runs with train.threads CPU threads, and restores the previous count when it returns.
    """
    local_processes = int(os.environ.get("LOCAL_WORLD_SIZE", 1))
    with num_threads(thread_count(cfg["threads"], local_processes, available_cores())):
        return _fit(model, data, cfg, run_dir, **options)


def _fit(
    model,
    data,
    cfg,
    run_dir,
    *,
    spec_hash="",
    resume=False,
    init_from=None,
    reporter=None,
    max_steps=None,
    time_axis=None,
    classes=None,
    resume_hint="continue with --resume",
    data_fingerprint=None,
    target_stats=None,
    channels_last_helps=False,
):
    run_dir = Path(run_dir)
    summary_writer = tensorboard_writer(cfg)  # before anything runs: a missing package fails at once
    rank, world, local_rank = dist_env()
    device = run_device(cfg, local_rank)
    init_distributed(cfg, device)
    main_rank = rank == 0
    if main_rank:
        run_dir.mkdir(parents=True, exist_ok=True)
    reporter = reporter or PlainReporter()
    task = cfg["task"]
    seed_everything(cfg["seed"], cfg["deterministic"])
    amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(cfg["precision"])

    def autocast():
        return torch.autocast(device.type, dtype=amp_dtype) if amp_dtype else nullcontext()

    if "train" in data:  # splits that are batch sources already (streamed data)
        splits = {s: data[s] for s in ("train", "val", "test")}
    else:
        splits = {
            s: Split(data[f"x_{s}"], data[f"y_{s}"], data.get(f"len_{s}"), device, time_axis)
            for s in ("train", "val", "test")
        }
    train = splits["train"]
    epochs = cfg["epochs"]
    ckpt_dir = run_dir / "checkpoints"
    # The global batch is fixed when a run starts (batch_size per process x processes) and kept on
    # every resume, on any number of processes that divides it (each then takes global / world).
    ckpt = resume_checkpoint(ckpt_dir, reporter) if resume else None
    global_batch = checkpoint_global_batch(ckpt, cfg) if ckpt is not None else cfg["batch_size"] * world
    bs = per_process_batch(global_batch, world, cfg)
    train_labels = train.labels if task != "classification" else None
    plan = sum_plan(cfg, () if train_labels is None else np.shape(train_labels))
    target = None
    if task != "classification" and cfg["data"].get("standardize_target"):
        target = TargetScale(target_stats or target_statistics(train_labels), device)
    steps_per_epoch = math.ceil(len(train) / global_batch)
    last_total = len(train) - (steps_per_epoch - 1) * global_batch  # samples of each epoch's last global batch
    trace = sample_trace(rank)
    fault = fault_hook(rank)

    model.to(device)
    if wants_channels_last(cfg["channels_last"], device, channels_last_helps):
        model.to(memory_format=torch.channels_last)  # 4-D weights only; the rest is unaffected
    if init_from is not None:
        state, err = load_checkpoint(init_from)
        if state is None:
            raise TrainError(f"--init-from {init_from}: {err}")
        weights = state.get("model", state) if isinstance(state, dict) else state
        try:
            unwrap(model).load_state_dict(weights)
        except (RuntimeError, TypeError, AttributeError) as exc:  # another model's weights: a user error
            first = str(exc).strip().splitlines()
            raise TrainError(
                f"--init-from {init_from}: the weights do not fit this model ({first[-1].strip() if first else exc})"
            ) from None
        reporter.message(f"initialized weights from {init_from}")
    if world > 1:
        model = nn.parallel.DistributedDataParallel(model, device_ids=[local_rank] if device.type == "cuda" else None)
        # DDP has broadcast rank 0's weights; from here each rank draws its own dropout masks.
        torch.manual_seed(cfg["seed"] + 1_000_003 * rank)
    # The steps run `step_model`; `model` (the same parameters) is saved, evaluated and restored.
    step_model = compiled(model) if cfg["compile"] else model
    if cfg["compile"]:
        reporter.message("train.compile: the first steps (and the first short batch) include compilation")
    optimizer = make_optimizer(cfg, model.parameters())
    schedule = Schedule(cfg, optimizer, steps_per_epoch, epochs)
    scaler = torch.amp.GradScaler(device.type, enabled=cfg["precision"] == "fp16")
    loss_fn = make_loss(cfg)

    early = EarlyStop(cfg, len(splits["val"]) > 0)
    state = {
        "epoch": 0,
        "step_in_epoch": 0,
        "global_step": 0,
        "best": None,
        "best_epoch": None,
        "bad_epochs": 0,
        "stopped_early": False,
    }
    partial = None
    metrics_path = run_dir / "metrics.jsonl"

    if ckpt is not None:
        try:
            restored = _restore(ckpt, spec_hash, model, optimizer, schedule, scaler, main_rank, rank, world, cfg)
        except (KeyError, TypeError, ValueError, RuntimeError, AttributeError, IndexError) as exc:
            # It unpickled (weights_only) but is not a checkpoint of this model: a foreign or edited file.
            raise TrainError(
                f"cannot resume: {ckpt_dir / 'last.pt'} is not a checkpoint of this run "
                f"({type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else 'malformed'})"
            ) from None
        state, partial = restored
        if data_fingerprint and ckpt.get("data") and ckpt["data"] != data_fingerprint:
            raise TrainError(
                f"cannot resume: the data changed since the checkpoint was written (fingerprint "
                f"{ckpt['data'][:12]} -> {data_fingerprint[:12]}: files added, removed, resized or edited). "
                "Restore the data, or start a new run (another -o, or --force)"
            )
        reporter.message(f"resumed at epoch {state['epoch'] + 1}, step {state['step_in_epoch']} of {steps_per_epoch}")
        before = checkpoint_world(ckpt)
        if before != world:
            reporter.message(
                f"resumed on {world} process{'es' * (world > 1)} (the checkpoint's run had {before}): the global "
                f"batch stays {global_batch}, {bs} per process; the sample order stays the run's"
            )
        if main_rank:  # drop epochs the checkpoint does not cover (and a line torn by a kill)
            keep = [r for r in read_metrics(metrics_path) if r["epoch"] <= state["epoch"]]
            atomic_write_text(metrics_path, "".join(json.dumps(r) + "\n" for r in keep))
            remove_stale_temps(ckpt_dir)
            remove_stale_temps(run_dir)

    tensorboard = None
    if summary_writer is not None and main_rank:
        tensorboard = reporter = TensorBoardReporter(
            reporter, summary_writer, run_dir / "tensorboard", state["epoch"] + 1
        )

    def diverged(what):
        reporter.close()
        last = ckpt_dir / "last.pt"
        kept = f"the last good checkpoint is {last}" if last.exists() else "no checkpoint was written before it"
        raise TrainError(f"{what}; {kept}. Lower the learning rate or add grad_clip.")

    def checkpoint(name, sums=None):
        # Reduce the partial sums over all ranks (every rank calls this) before rank 0 saves them:
        # saving rank 0's own sums alone lost the other ranks' share of an interrupted epoch.
        partial = None if sums is None else sums.reduced(world)
        # The loss is summed on the device without a per-step sync, so a diverged run is caught here,
        # once per checkpoint (every rank sees the same values): it must never replace a good checkpoint.
        if partial is not None and not math.isfinite(partial[0]):
            diverged(
                f"the training loss became {partial[0]} in epoch {state['epoch'] + 1} "
                f"(by step {state['step_in_epoch']} of {steps_per_epoch})"
            )
        if not finite_weights(model):
            diverged(f"the weights became inf or nan by step {state['global_step']} (the loss is diverging)")
        rng = _rng_state()
        if world > 1:  # each rank's RNG (its own dropout stream) goes into the one checkpoint
            every_rng: list = [None] * world
            torch.distributed.all_gather_object(every_rng, rng)
            rng = every_rng
        if not main_rank:
            return
        payload = {
            "format": CHECKPOINT_FORMAT,
            "spec_hash": spec_hash,
            "data": data_fingerprint,
            "model": unwrap(model).state_dict(),
            "optimizer": optimizer.state_dict(),
            "schedule": dict(schedule.state),
            "scaler": scaler.state_dict(),
            "state": dict(state),
            "partial": partial,
            "rng": rng,
            "global_batch": global_batch,
            "world": world,
        }
        write_checkpoint(ckpt_dir, name, payload)

    every = cfg["checkpoint_every_steps"]
    steps_taken = 0
    model.train()

    def stop_asked():
        return bool(agreed) or (max_steps is not None and steps_taken >= max_steps)

    def stopped():
        """After the checkpoint of a --max-steps stop (returns None) or of a signal (raises Interrupted)."""
        reporter.close()
        if agreed:
            at, e = state["step_in_epoch"], state["epoch"]
            where = f"after step {at} of {steps_per_epoch} in epoch {e + 1}" if at else f"at the end of epoch {e}"
            what = "preempted (SIGTERM)" if agreed == signal.SIGTERM else "interrupted"
            by = f"; all {world} processes stopped there" if world > 1 else ""
            reporter.message(f"{what}: stopped {where} (checkpoint written{by}); {resume_hint}")
            raise Interrupted(EXIT_CODES.get(signal.Signals(agreed), 128 + agreed))
        reporter.message(f"stopped after {steps_taken} steps (checkpoint written); {resume_hint}")
        return None

    agreed = 0  # the signal every rank agreed to stop on (0: none)
    vote = StopVote(world)
    # Signals are caught only while steps run: in set-up or the final evaluation they act at once.
    with StopOnSignals() as interrupt:
        while state["epoch"] < epochs and not state["stopped_early"]:
            epoch = state["epoch"]
            order = epoch_order(len(train), epoch, cfg["seed"], rank, world)
            sums = Sums(device, partial, plan)
            partial = None
            reporter.epoch_start(epoch + 1, epochs, steps_per_epoch)
            count0 = float(partial_count(sums, world))
            t0 = time.perf_counter()
            batches = iter(train.batches(order, state["step_in_epoch"], bs, epoch))
            for i in range(state["step_in_epoch"], steps_per_epoch):
                batch = next(batches, None)  # None: this rank's share of a short last batch is empty
                total = last_total if i + 1 == steps_per_epoch else global_batch
                if trace is not None:
                    trace.write(f"{state['global_step']} {' '.join(map(str, order[i * bs : (i + 1) * bs]))}\n")
                schedule.apply(state["global_step"])
                optimizer.zero_grad(set_to_none=True)
                if batch is None:
                    stand_in(model, step_model, train, epoch, loss_fn, target, autocast, scaler)
                else:
                    x, y, lengths = batch
                    with autocast():
                        out = forward(step_model, x, lengths)
                        loss = loss_fn(out, y if target is None else target.standardize(y))
                    weight = share_weight(y.shape[0], world, total)
                    scaler.scale(loss if weight == 1.0 else loss * weight).backward()
                if cfg["grad_clip"]:
                    scaler.unscale_(optimizer)
                    nn.utils.clip_grad_norm_(model.parameters(), cfg["grad_clip"])
                scaler.step(optimizer)
                scaler.update()
                if batch is not None:
                    sums.add(loss, out.float(), y, task, target)
                state["global_step"] += 1
                state["step_in_epoch"] = i + 1
                if fault is not None and state["global_step"] == fault[0]:
                    os.kill(os.getppid() if fault[2] else os.getpid(), fault[1])
                steps_taken += 1
                reporter.step(i + 1)
                agreed = vote.poll(interrupt.signum)
                # A stop on the last step of an epoch waits for the epoch's end (evaluation, metrics, checkpoint).
                stop_now = stop_asked() and i + 1 < steps_per_epoch
                if stop_now or (every and state["global_step"] % every == 0 and i + 1 < steps_per_epoch):
                    checkpoint("last.pt", sums)
                if stop_now:
                    vote.finish()
                    return stopped()
            train_vals = sums.reduced(world)
            if not math.isfinite(train_vals[0]):
                diverged(f"the training loss became {train_vals[0]} in epoch {epoch + 1}")
            elapsed = time.perf_counter() - t0
            record = {"epoch": epoch + 1, "epochs": epochs, **Sums.metrics(train_vals, cfg, "")}
            if len(splits["val"]):
                val = evaluate(model, splits["val"], cfg, loss_fn, rank, world, autocast, device, False, target, plan)
                assert isinstance(val, dict)  # without want_predictions: the metrics alone
                record.update({f"val_{k}": v for k, v in val.items()})
            record["lr"] = schedule.lr()
            record["time"] = elapsed
            record["samples_per_s"] = (train_vals[3] - count0) / elapsed if elapsed > 0 else 0.0
            value = record.get(early.monitor)
            schedule.epoch_end(value, early.mode)
            state["epoch"], state["step_in_epoch"] = epoch + 1, 0
            improved = early.update(state, value, epoch + 1)
            reporter.epoch_end(record)
            if main_rank:
                with open(metrics_path, "a", encoding="utf-8") as f:
                    f.write(json.dumps(record) + "\n")
            if improved:
                checkpoint("best.pt")
            checkpoint("last.pt")
            if stop_asked() and state["epoch"] < epochs:
                vote.finish()
                return stopped()
    vote.finish()
    if trace is not None:
        trace.close()
    reporter.close()

    if early.restores(state):
        best, _ = load_checkpoint(ckpt_dir / "best.pt")
        if best is not None:
            unwrap(model).load_state_dict(best["model"])
            reporter.message(
                f"early stop: restored the weights of epoch {state['best_epoch']} ({early.monitor} {state['best']:.4f})"
            )
    results = final_results(
        model, splits, cfg, loss_fn, rank, world, autocast, device, classes, state, early.monitor, target, plan
    )
    if main_rank:
        write_results(run_dir, model, results, metrics_path)
    if tensorboard is not None:
        tensorboard.finish(results)
    return results


def read_metrics(path):
    """The records of metrics.jsonl; a last line torn by a kill is skipped."""
    rows = []
    if Path(path).exists():
        for ln in Path(path).read_text().splitlines():
            try:
                rows.append(json.loads(ln))
            except json.JSONDecodeError:
                continue
    return rows


def write_csv(jsonl, csv_path):
    rows = read_metrics(jsonl)
    keys = []
    for r in rows:
        keys += [k for k in r if k not in keys]
    lines = [",".join(keys)] + [",".join(str(r.get(k, "")) for k in keys) for r in rows]
    atomic_write_text(csv_path, "\n".join(lines) + "\n")
