"""A rich progress bar for the training loop that costs nothing per step: the loop reports the
step number only (no loss, so no host sync), and the bar redraws at most a few times a second."""

from __future__ import annotations

import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from .loop import format_record


class RichReporter:
    REFRESH_S = 0.2

    def __init__(self):
        self.console = Console(highlight=False)
        self.progress: Progress | None = None
        self.task: TaskID | None = None
        self.last = 0.0

    def epoch_start(self, epoch, epochs, steps):
        self.close()
        self.progress = Progress(
            TextColumn(f"epoch {epoch}/{epochs}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=self.console,
            transient=True,
            auto_refresh=False,
        )
        self.progress.start()
        self.task = self.progress.add_task("", total=steps)
        self.last = 0.0

    def step(self, i):
        now = time.monotonic()
        if now - self.last >= self.REFRESH_S and self.progress is not None and self.task is not None:
            self.last = now  # throttled: the draw, not the step, costs
            self.progress.update(self.task, completed=i)
            self.progress.refresh()

    def epoch_end(self, record):
        self.close()
        self.console.print(format_record(record))

    def message(self, text):
        self.console.print(text)

    def end(self, status: str, **fields) -> None:
        """The run's final status: status.json's business (StatusReporter), nothing to draw."""

    def close(self):
        if self.progress is not None:
            self.progress.stop()
            self.progress = None
