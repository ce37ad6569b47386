"""Baseline of `netspec summarize`: what a PyTorch user runs to see a model's summary.

python -m bench.workers.torchinfo_summary vgg16
"""

import json
import sys

import torch  # noqa: F401  (part of the baseline's cost, as in any user's script)
from torchinfo import summary

from bench.handwritten import MODELS

if __name__ == "__main__":
    model = MODELS[sys.argv[1]]()
    stats = summary(model, input_size=(1, 3, 224, 224))  # prints the table, like netspec's text
    print(json.dumps({"total_params": stats.total_params}))
