"""The benchmark's hand-written baselines (bench/handwritten.py) are the same networks as netspec's
specs: same parameter count and output shape, and with netspec's weights copied across (by order)
the same outputs. Keeps the benchmark honest; no timing here."""

import sys

import pytest

torch = pytest.importorskip("torch")

from tests.conftest import ROOT  # noqa: E402

if str(ROOT) not in sys.path:  # bench/ is a package at the repository root, not installed
    sys.path.insert(0, str(ROOT))

from bench.handwritten import MODELS, copy_weights, count_params  # noqa: E402
from bench.models import STEP_PAIRS, Pair, batch, both, compile_spec, netspec_module  # noqa: E402

CLASSES = {"lenet5": 10, "digits_cnn": 10, "lstm_classifier": 4, "digits_lstm": 10, "resnet18": 1000}


@pytest.mark.parametrize("pair", STEP_PAIRS, ids=lambda p: p.name)
def test_same_network_same_outputs(pair: Pair):
    ours, hand = both(pair)
    assert count_params(hand) == count_params(ours) == compile_spec(pair.name, pair.sets).total_params
    x, _ = batch(pair, CLASSES[pair.name], size=4)
    modes = ("eval", "train") if not any(isinstance(m, torch.nn.Dropout) for m in hand.modules()) else ("eval",)
    for mode in modes:  # train mode: batch norm on the batch's statistics
        getattr(ours, mode)()
        getattr(hand, mode)()
        with torch.no_grad():
            a, b = ours(x), hand(x)
        assert a.shape == b.shape == (4, CLASSES[pair.name])
        torch.testing.assert_close(b, a, atol=1e-5, rtol=1e-5)


def test_full_size_nets_on_the_meta_device():
    """VGG-16 and ResNet-18 at 224x224, as `netspec summarize` sees them: shapes only, no memory."""
    for name in ("vgg16", "resnet18"):
        with torch.device("meta"):
            ours = netspec_module(name, seed=None)
            hand = MODELS[name]()
            copy_weights(ours, hand)  # checks every tensor's shape, in order
            x = torch.empty(2, 3, 224, 224)
            assert ours(x).shape == hand(x).shape == (2, 1000)
        assert count_params(hand) == count_params(ours) == compile_spec(name).total_params
