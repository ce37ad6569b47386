"""Baseline of `netspec train` on an image folder: a typical hand-written loop over torchvision's
ImageFolder and a DataLoader with worker processes, on the same files, network, augmentation,
optimizer, schedule, loss, batch size and epochs as bench/specs/folder_cnn.yaml.

    python -m bench.workers.hand_folder_train /tmp/images --epochs 4
"""

import torch
from torch.utils.data import DataLoader

from bench.workers.common import EpochClock, make_loss, make_optimizer, make_schedule
from bench.workers.folder_common import load_job, make_model, parse_args


def main() -> None:
    args = parse_args(__doc__)
    job = load_job(args.folder, args.epochs)
    cfg = job.cfg
    device = torch.device(args.device)
    model = make_model(cfg["seed"]).to(device)
    optimizer = make_optimizer(cfg, model.parameters())
    scheduler = make_schedule(cfg, optimizer, job.steps_per_epoch)
    loss_fn = make_loss(cfg)
    loader = DataLoader(
        job.dataset,
        batch_size=cfg["batch_size"],
        shuffle=True,
        num_workers=args.workers,
        pin_memory=device.type == "cuda",
    )
    clock = EpochClock(device)
    for epoch in range(cfg["epochs"]):
        model.train()
        clock.start()
        seen, total_loss, correct = 0, 0.0, 0
        for x, y in loader:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            optimizer.zero_grad()
            out = model(x)
            loss = loss_fn(out, y)
            loss.backward()
            optimizer.step()
            scheduler.step()
            total_loss += loss.item() * len(y)
            correct += (out.argmax(1) == y).sum().item()
            seen += len(y)
        clock.stop(seen)
        print(f"epoch {epoch + 1}: loss {total_loss / seen:.4f} accuracy {correct / seen:.4f}", flush=True)
    clock.report(params=sum(p.numel() for p in model.parameters()))


if __name__ == "__main__":
    main()
