"""The README's pipeline example runs as printed."""

from __future__ import annotations

import pathlib
import re

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def test_readme_pipeline_example_runs(capsys):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)
    assert blocks, "README has no python example"
    namespace: dict = {}
    exec(compile(blocks[0], str(README), "exec"), namespace)
    printed = capsys.readouterr().out
    assert "loss after 3 steps:" in printed
    assert "{'applied_count': 48, 'skipped_count': 0}" in printed


def test_readme_training_settings_example_builds_its_configs():
    """The training settings' example: its three configs construct and run on a batch."""
    import numpy as np
    from flax import nnx

    import datarax_ops as dx

    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)
    (block,) = [b for b in blocks if "blind_denoising" in b]
    namespace: dict = {}
    exec(compile(block, str(README), "exec"), namespace)
    images = np.random.default_rng(0).random((4, 8, 8, 3), dtype=np.float32)
    for name in ("blind_denoising", "low_light", "whole_pixels"):
        config = namespace[name]
        cls = dx.NoiseOperator if isinstance(config, dx.NoiseOperatorConfig) else dx.DropoutOperator
        out = cls(config, rngs=nnx.Rngs(0))({"image": images})["image"]
        assert out.shape == images.shape and out.dtype == images.dtype
