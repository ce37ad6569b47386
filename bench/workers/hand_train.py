"""Baseline of `netspec train`: a typical hand-written PyTorch loop over a DataLoader, on the same
data, model, optimizer, schedule, loss, batch size and epochs.

    python -m bench.workers.hand_train digits_cnn --epochs 6
"""

import torch
from torch.utils.data import DataLoader, TensorDataset

from bench.workers.common import EpochClock, load_job, make_loss, make_model, make_optimizer, make_schedule, parse_args


def main() -> None:
    args = parse_args(__doc__)
    job = load_job(args.name)
    cfg = {**job.cfg, "epochs": args.epochs}
    device = torch.device(args.device)
    model = make_model(args.name, cfg["seed"]).to(device)
    optimizer = make_optimizer(cfg, model.parameters())
    scheduler = make_schedule(cfg, optimizer, job.steps_per_epoch)
    loss_fn = make_loss(cfg)
    loader = DataLoader(TensorDataset(job.x, job.y), batch_size=cfg["batch_size"], shuffle=True)
    clock = EpochClock(device)
    for epoch in range(cfg["epochs"]):
        model.train()
        clock.start()
        seen, total_loss, correct = 0, 0.0, 0
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            optimizer.zero_grad()
            out = model(x)
            loss = loss_fn(out, y)
            loss.backward()
            if cfg["grad_clip"]:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg["grad_clip"])
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
