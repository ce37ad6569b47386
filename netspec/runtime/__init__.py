"""Run time: data, the training loop, checkpoints, distributed set-up. Imports torch (except
datasets/prepare/atomic, which need only numpy or the standard library)."""
