"""README's "Your own data" section (repeated in docs/train.md): every YAML example in it is a spec
fragment that `netspec check` accepts once a model is put around it, and an example that the
check's rules reject when it is broken (a crop larger than the input) is reported at its line."""

from __future__ import annotations

import re

import pytest
import yaml

from netspec.compiler import compile_text
from netspec.docs import own_data_section

from .conftest import ROOT

SECTION = own_data_section()
BLOCKS = re.findall(r"```yaml\n(.*?)```", SECTION, re.S)


def test_the_section_is_in_readme_and_train_md():
    assert SECTION.startswith("## Your own data") and len(BLOCKS) >= 3
    assert SECTION in (ROOT / "docs" / "train.md").read_text()


@pytest.mark.parametrize("block", BLOCKS, ids=[f"example{i}" for i in range(len(BLOCKS))])
def test_each_example_checks(block):
    fragment = yaml.safe_load(block)
    shape = next(iter(fragment["inputs"].values()))["shape"]
    text = "netspec: 1\nlayers: [flatten, {linear: 10}]\n" + block
    res = compile_text(text, "example.yaml")
    assert res.ok, "\n".join(d.render() for d in res.diagnostics)
    assert list(res.typed.input.shape) == shape
    if "augment" in block and len(shape) == 3:  # the same example, broken: the crop no longer fits
        broken = text.replace(f"shape: {shape}", f"shape: [{shape[0]}, 32, 32]")
        (d,) = [d for d in compile_text(broken, "example.yaml").diagnostics if d.is_error]
        assert d.code == "augment" and "does not fit the input" in d.message
