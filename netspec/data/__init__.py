"""Data: what a spec's `train.data` reads and how it reaches the model.

Two floors, like layers:
- augment.py (front end, torch-free): the augmentation registry. Each op's parameter schema, its
  static rule over a sample's (kind, channels, size, dtype, value range), its evaluation form and
  its lowering to torchvision transforms v2 stand in one entry; `netspec check` runs the rules.
- sources.py and stream.py (beside runtime/, import torch lazily): image folders and memory-mapped
  arrays as indexable sample sets, and the batch source that feeds them to the loop through
  DataLoader workers with per-sample randomness keyed by (seed, epoch, index).
"""
