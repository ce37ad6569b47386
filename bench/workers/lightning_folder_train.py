"""Baseline of `netspec train` on an image folder: PyTorch Lightning's Trainer over torchvision's
ImageFolder and a DataLoader with worker processes, on the same files, network, augmentation,
optimizer, schedule, loss, batch size and epochs as bench/specs/folder_cnn.yaml. Logger and
checkpointing off, progress bar and model summary at Lightning's defaults (as in
lightning_train.py); the train-epoch time comes from a callback.

    python -m bench.workers.lightning_folder_train /tmp/images --epochs 4
"""

import logging

import lightning as L
import torch
from torch.utils.data import DataLoader

from bench.workers.common import EpochClock
from bench.workers.folder_common import load_job, make_model, parse_args
from bench.workers.lightning_train import Classifier, EpochTimer


def main() -> None:
    args = parse_args(__doc__)
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    job = load_job(args.folder, args.epochs)
    cfg = job.cfg
    device = torch.device(args.device)
    model = make_model(cfg["seed"])
    clock = EpochClock(device)
    trainer = L.Trainer(
        max_epochs=cfg["epochs"],
        accelerator="gpu" if device.type == "cuda" else "cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        gradient_clip_val=cfg["grad_clip"] or None,
        callbacks=[EpochTimer(clock, len(job.dataset))],
    )
    loader = DataLoader(
        job.dataset,
        batch_size=cfg["batch_size"],
        shuffle=True,
        num_workers=args.workers,
        pin_memory=device.type == "cuda",
    )
    trainer.fit(Classifier(model, cfg, job.steps_per_epoch), loader)
    clock.report(params=sum(p.numel() for p in model.parameters()))


if __name__ == "__main__":
    main()
