"""``python -m reference``: each mode's effect and statistics on a synthetic image.

Prints, for every mode, what fraction of values changed, the mean and
standard deviation of the change, and the output range, for a built-in
64x64x3 image (a smooth gradient), together with what the spec predicts.
"""

from __future__ import annotations

import argparse

import numpy as np

import reference
from reference.config import DropoutOperatorConfig, NoiseOperatorConfig


def synthetic_image(height: int = 64, width: int = 64, channels: int = 3) -> np.ndarray:
    """A smooth float32 gradient in [0.05, 0.95]: a different value per channel."""
    rows = np.linspace(0.05, 0.95, height)[:, None, None]
    cols = np.linspace(0.05, 0.95, width)[None, :, None]
    shift = np.linspace(0.0, 1.0, channels)[None, None, :]
    return ((rows + cols + shift) / 3.0 * 0.9 + 0.05).astype(np.float32)


def demo_configs() -> list[tuple[str, NoiseOperatorConfig | DropoutOperatorConfig, str]]:
    """(label, config, what the spec predicts) for every mode."""
    return [
        (
            "gaussian std=0.05",
            NoiseOperatorConfig(field_key="image", mode="gaussian", noise_std=0.05),
            "change ~ N(0, 0.05^2) away from the clip bounds",
        ),
        (
            "salt_pepper 0.05/0.05",
            NoiseOperatorConfig(
                field_key="image", mode="salt_pepper", salt_prob=0.05, pepper_prob=0.05
            ),
            "10% of values set: 5% to 1.0, 5% to 0.0",
        ),
        (
            "poisson lam_scale=50",
            NoiseOperatorConfig(field_key="image", mode="poisson", lam_scale=50.0),
            "mean change 0, variance x/50 (std ~0.1 at x=0.5)",
        ),
        (
            "dropout pixel 0.2",
            DropoutOperatorConfig(field_key="image", mode="pixel", dropout_rate=0.2),
            "20% of values zeroed",
        ),
        (
            "dropout channel 0.5",
            DropoutOperatorConfig(field_key="image", mode="channel", dropout_rate=0.5),
            "each channel zeroed whole with probability 0.5",
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reference", description=__doc__)
    parser.add_argument("--seed", type=int, default=0, help="numpy Generator seed")
    args = parser.parse_args(argv)

    image = synthetic_image()
    rng = np.random.default_rng(args.seed)
    print(
        f"synthetic image {image.shape} {image.dtype}, values in "
        f"[{image.min():.3f}, {image.max():.3f}], seed {args.seed}\n"
    )
    header = f"{'mode':<24}{'changed':>9}{'mean d':>10}{'std d':>9}{'out min':>9}{'out max':>9}"
    print(header + "   spec predicts")
    print("-" * (len(header) + 40))
    for label, config, predicted in demo_configs():
        params = reference.draw(config, rng, image.shape)
        out = reference.apply(config, image, params)
        delta = out.astype(np.float64) - image
        changed = np.mean(out != image)
        print(
            f"{label:<24}{changed:>9.3f}{delta.mean():>10.4f}{delta.std():>9.4f}"
            f"{out.min():>9.3f}{out.max():>9.3f}   {predicted}"
        )
        if isinstance(config, DropoutOperatorConfig) and config.mode == "channel":
            kept = params["keep_mask"].astype(int).tolist()
            print(f"{'':<24}channel keep mask: {kept}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
