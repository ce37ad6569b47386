"""Baseline of `netspec train`: PyTorch Lightning's Trainer on the same data, model, optimizer,
schedule, loss, batch size and epochs. Logger and checkpointing are off (it writes nothing); the
progress bar and model summary stay at Lightning's defaults (RichProgressBar when rich is
installed, as it is with netspec; here writing to a file, not a terminal); the train-epoch time
comes from a callback.

    python -m bench.workers.lightning_train digits_cnn --epochs 6
"""

import logging
import warnings

import lightning as L
import torch
from torch.utils.data import DataLoader, TensorDataset

from bench.workers.common import EpochClock, load_job, make_loss, make_model, make_optimizer, make_schedule, parse_args


class Classifier(L.LightningModule):
    def __init__(self, model, cfg, steps_per_epoch):
        super().__init__()
        self.model, self.cfg, self.steps_per_epoch = model, cfg, steps_per_epoch
        self.loss_fn = make_loss(cfg)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = self.loss_fn(self.model(x), y)
        self.log("train_loss", loss, prog_bar=True)
        return loss

    def configure_optimizers(self):
        optimizer = make_optimizer(self.cfg, self.parameters())
        scheduler = make_schedule(self.cfg, optimizer, self.steps_per_epoch)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


class EpochTimer(L.Callback):
    def __init__(self, clock: EpochClock, samples: int):
        self.clock, self.samples = clock, samples

    def on_train_epoch_start(self, trainer, pl_module):
        self.clock.start()

    def on_train_epoch_end(self, trainer, pl_module):
        self.clock.stop(self.samples)


def main() -> None:
    args = parse_args(__doc__)
    warnings.filterwarnings("ignore", ".*does not have many workers.*")  # in-memory tensors: 0 is best
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    job = load_job(args.name)
    cfg = {**job.cfg, "epochs": args.epochs}
    device = torch.device(args.device)
    model = make_model(args.name, cfg["seed"])
    clock = EpochClock(device)
    trainer = L.Trainer(
        max_epochs=cfg["epochs"],
        accelerator="gpu" if device.type == "cuda" else "cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        gradient_clip_val=cfg["grad_clip"] or None,
        callbacks=[EpochTimer(clock, len(job.y))],
    )
    loader = DataLoader(TensorDataset(job.x, job.y), batch_size=cfg["batch_size"], shuffle=True)
    trainer.fit(Classifier(model, cfg, job.steps_per_epoch), loader)
    clock.report(params=sum(p.numel() for p in model.parameters()))


if __name__ == "__main__":
    main()
