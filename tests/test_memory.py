"""Specs too large for memory are refused from the static counts, before anything is allocated."""

import pytest

from netspec import memory
from netspec.compiler import compile_text

HUGE = "netspec: 1\ninputs:\n  x: {shape: [1000]}\nlayers:\n  - linear: 1000000000\n"
SMALL = """netspec: 1
inputs:
  x: {shape: [10]}
layers:
  - linear: 20
  - relu
  - linear: 3
train:
  data: {source: synthetic, samples: 64}
  batch_size: 8
  epochs: 1
"""


def test_sizes_parse():
    assert memory.parse_size("8GB") == 8 * 2**30
    assert memory.parse_size("512 MiB") == 512 * 2**20
    assert memory.parse_size("1e9") == 10**9
    with pytest.raises(ValueError):
        memory.parse_size("lots")


def test_build_estimate_is_params_plus_buffers():
    typed = compile_text(HUGE).typed
    need, _ = memory.estimate(typed)
    assert need == 4 * (1000 * 10**9 + 10**9)
    with pytest.raises(memory.MemoryLimitError, match=r"would need about .* over the limit"):
        memory.check(typed, 2**30)


def test_train_estimate_counts_gradients_optimizer_state_and_activations():
    res = compile_text(SMALL)
    typed, cfg = res.typed, res.train
    params = (10 * 20 + 20) + (20 * 3 + 3)
    acts = 20 + 20 + 3  # per-sample outputs of the three layers
    need, _ = memory.estimate(typed, cfg, data_bytes=100)
    assert need == 4 * params * (1 + 1 + 2) + acts * 4 * 8 * 2 + 100  # adam: 2 states


@pytest.mark.parametrize("command", ["build", "train"])
def test_cli_refuses_before_allocating(cli, tmp_path, command):
    spec = tmp_path / "huge.yaml"
    spec.write_text(HUGE + ("train:\n  data: {source: synthetic, samples: 8}\n" if command == "train" else ""))
    code, out, err = cli(command, spec, "-o", tmp_path / "out")
    assert code == 1, out + err
    assert "would need about" in err and "--max-memory" in err
    assert not (tmp_path / "out" / "weights.pt").exists()


def test_max_memory_flag(cli, tmp_path):
    spec = tmp_path / "small.yaml"
    spec.write_text(SMALL)
    code, _, err = cli("build", spec, "-o", tmp_path / "b", "--max-memory", "1KB")
    assert code == 1 and "over the limit of 1.00 KiB" in err
    code, _, err = cli("build", spec, "-o", tmp_path / "b2", "--max-memory", "1GB")
    assert code == 0, err
    code, _, err = cli("build", spec, "-o", tmp_path / "b3", "--max-memory", "huge")
    assert code == 1 and "not a size" in err
