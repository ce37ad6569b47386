"""No text that is not netspec's reaches the user, and what reaches them arrives in order.

- padding 'same' with an even kernel: PyTorch warns on every run; netspec lowers such convs with
  explicit zero padding (layers.SameConvNd) that equals PyTorch's 'same' exactly, without it.
- a short `netspec check/summarize/build/train` writes no foreign warning to stderr.
- stdout and stderr, piped into one pipe, keep the order the lines were written in.
"""

from __future__ import annotations

import importlib.util
import itertools
import warnings

import pytest
import torch
from torch import nn

from netspec.compiler import compile_text
from netspec.lower.codegen import model_source
from netspec.lower.module import lower


def conv_spec(n: int, kernel, dilation, *, time: bool = False) -> str:
    shape = "[3, T]" if time else "[3" + ", 11" * n + "]"
    dims = "dims: {T: 17}\n" if time else ""
    return (
        f"netspec: 1\nname: same{n}\ninputs:\n  x: {{shape: {shape}}}\n{dims}layers:\n"
        f"  - conv{n}d: {{name: conv, out_channels: 4, kernel_size: {kernel}, dilation: {dilation}, padding: same}}\n"
    )


def torch_same(n: int, model: nn.Module) -> nn.Module:
    """PyTorch's own padding='same' conv with the lowered conv's weights."""
    conv = model.conv
    ref = getattr(nn, f"Conv{n}d")(3, 4, conv.kernel_size, dilation=conv.dilation, padding="same")
    ref.load_state_dict(conv.state_dict())
    return ref


CASES = [(1, k, d) for k, d in itertools.product((1, 2, 3, 4, 8), (1, 2, 3))] + [
    (2, k, d) for k, d in (([2, 3], 1), ([4, 4], 1), ([3, 2], [1, 3]), ([2, 2], 2), (3, 1))
]


@pytest.mark.parametrize(("n", "kernel", "dilation"), CASES, ids=lambda v: str(v).replace(" ", ""))
def test_same_conv_equals_torch_same_without_a_warning(n, kernel, dilation):
    typed = compile_text(conv_spec(n, kernel, dilation)).typed
    model = lower(typed, seed=0).eval()
    assert list(model.state_dict()) == ["conv.weight", "conv.bias"]  # checkpoints keep their keys
    ks = [kernel] * n if isinstance(kernel, int) else kernel
    ds = [dilation] * n if isinstance(dilation, int) else dilation
    if any(d * (k - 1) % 2 for k, d in zip(ks, ds, strict=True)):
        # PyTorch warns once per process, so the check below may come after its one warning:
        # this one holds however the tests run.
        assert model.conv.padding != "same" and type(model.conv).__name__ == f"SameConv{n}d"
    x = torch.randn(2, 3, *[11] * n, generator=torch.Generator().manual_seed(1))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with torch.no_grad():
            got = model(x)
    assert [str(w.message) for w in caught] == []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's own warning for an even kernel, the oracle's business
        with torch.no_grad():
            want = torch_same(n, model)(x)
    assert got.shape == want.shape == (2, 4, *[11] * n)
    assert torch.equal(got, want)  # the very same operations: PyTorch pads the same way inside


def test_even_kernel_lowers_to_an_explicit_pad_in_readable_model_py(tmp_path):
    typed = compile_text(conv_spec(1, 8, 1)).typed
    source = model_source(typed)
    assert "class SameConv1d(nn.Conv1d):" in source
    assert "self.conv = SameConv1d(in_channels=3, out_channels=4, kernel_size=8)" in source
    assert "nn.functional.pad(" in source
    odd = model_source(compile_text(conv_spec(1, 3, 1)).typed)  # odd kernels: unchanged, PyTorch's 'same'
    assert "padding='same'" in odd and "SameConv" not in odd
    # The generated file alone gives the in-process module's output, silently.
    path = tmp_path / "model.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("gen_model", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    gen = mod.Same1().eval()
    model = lower(typed, seed=0).eval()
    gen.load_state_dict(model.state_dict())
    x = torch.randn(2, 3, 11)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with torch.no_grad():
            assert torch.equal(gen(x), model(x))


def test_even_kernel_same_conv_still_masks_variable_lengths():
    """The MASK path (passes.lengths): padded steps are zeroed before the conv, so each series'
    real steps come out as if it ran alone, unpadded."""
    typed = compile_text(conv_spec(1, 4, 1, time=True)).typed
    model = lower(typed, seed=0).eval()
    a, b = torch.randn(1, 3, 9), torch.randn(1, 3, 13)
    batch = torch.zeros(2, 3, 13)
    batch[0, :, :9], batch[1] = a[0], b[0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with torch.no_grad():
            out = model(batch, lengths=torch.tensor([9, 13]))
            alone = model(a)
    torch.testing.assert_close(out[0, :, :9], alone[0])
