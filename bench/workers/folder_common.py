"""What the image-folder baselines (hand_folder_train.py, lightning_folder_train.py) share with
`netspec train bench/specs/folder_cnn.yaml`: the spec's train: section (optimizer, schedule, loss,
batch size, augmentation), the network written by hand, and the augmentation written as a user
would: torchvision's ImageFolder (Pillow decoding) with the same ops as transforms v2."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from bench import ROOT

SPEC = ROOT / "bench" / "specs" / "folder_cnn.yaml"


def parse_args(description: str) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("folder", type=Path, help="the image folder (one subfolder per class)")
    p.add_argument("--epochs", type=int, required=True)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--device", default="cpu")
    return p.parse_args()


@dataclass
class FolderJob:
    cfg: dict  # the spec's resolved train: section
    dataset: torch.utils.data.Dataset

    @property
    def steps_per_epoch(self) -> int:
        return -(-len(self.dataset) // self.cfg["batch_size"])


def transforms(augment: list) -> object:
    """The spec's augmentation as a torchvision v2 pipeline, as its documentation writes one."""
    from torchvision.transforms import v2

    from netspec.data.augment import items

    ops = {name: args for _, name, args in items(augment)}
    if list(ops) != ["random_resized_crop", "horizontal_flip", "normalize"]:
        raise SystemExit(f"the baselines know random_resized_crop, horizontal_flip, normalize, not {list(ops)}")
    crop, norm = ops["random_resized_crop"], ops["normalize"]
    return v2.Compose(
        [
            v2.ToImage(),
            v2.RandomResizedCrop(crop["size"], scale=crop["scale"], ratio=crop["ratio"], antialias=True),
            v2.RandomHorizontalFlip(p=ops["horizontal_flip"]["p"]),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(norm["mean"], norm["std"]),
        ]
    )


def load_job(folder: Path, epochs: int) -> FolderJob:
    from torchvision.datasets import ImageFolder

    from netspec.runtime.session import open_spec

    cfg = open_spec(SPEC, [f"train.epochs={epochs}"]).cfg
    return FolderJob(cfg, ImageFolder(str(folder), transform=transforms(cfg["data"]["augment"])))


def make_model(seed: int) -> nn.Module:
    """bench/specs/folder_cnn.yaml's layers."""
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, stride=2, padding=1),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding="same"),
        nn.BatchNorm2d(32),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(32, 10),
    )
