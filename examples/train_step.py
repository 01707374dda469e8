"""Augmentation inside an ``nnx.jit`` training step.

A small classifier learns to tell bright images from dark ones while every batch
is augmented (gaussian noise, then channel dropout) inside the compiled step.
The example asserts that:

* the images the step trained on are what the same operators give eagerly
  (``op(batch)`` outside jit, from the same state): the same dropped channels and
  the same noise, to rounding (within ``2**-22``) (inside one compiled program XLA fuses the
  gaussian's ``x + noise`` with the dropout that consumes it and may round it
  differently; an operator whose output leaves the program unfused is
  bit-identical, ``tests/test_randomness.py``);
* the step compiled once for all steps (the operators' state is carried by NNX);
* the loss went down and every record was counted (``get_operation_stats``).
"""

from __future__ import annotations

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

import datarax_ops as dx

BATCH, SIDE, CHANNELS, STEPS = 16, 8, 3, 30


class Classifier(nnx.Module):
    """Linear classifier: images ``float32 (B, SIDE, SIDE, CHANNELS)`` -> logits ``(B, 2)``."""

    def __init__(self, rngs: nnx.Rngs):
        self.linear = nnx.Linear(SIDE * SIDE * CHANNELS, 2, rngs=rngs)

    def __call__(self, images: jax.Array) -> jax.Array:
        return self.linear((images - 0.5).reshape(images.shape[0], -1))


TRACES = 0


@nnx.jit
def train_step(model, noise, dropout, batch):
    """One SGD step on the augmented batch; returns ``(loss, augmented images)``."""
    global TRACES
    TRACES += 1  # runs only while tracing
    augmented = dropout(noise(batch)).data.get_value()
    images, labels = augmented["image"], augmented["label"]

    def loss_fn(model):
        log_probs = jax.nn.log_softmax(model(images))
        return -jnp.take_along_axis(log_probs, labels[:, None], axis=1).mean()

    loss, grads = nnx.value_and_grad(loss_fn)(model)
    params = nnx.state(model, nnx.Param)
    nnx.update(model, jax.tree.map(lambda p, g: p - 0.05 * g, params, grads))
    return loss, images


def make_batch(step: int) -> dx.Batch:
    """Label 1: bright images (mean 0.7), label 0: dark ones (mean 0.3)."""
    rng = np.random.default_rng(step)
    labels = rng.integers(0, 2, BATCH).astype(np.int32)
    base = np.where(labels[:, None, None, None] == 1, 0.7, 0.3).astype(np.float32)
    images = base + 0.1 * rng.standard_normal((BATCH, SIDE, SIDE, CHANNELS), np.float32)
    return dx.Batch.from_parts(data={"image": jnp.asarray(images), "label": jnp.asarray(labels)})


def main() -> None:
    noise = dx.NoiseOperator(
        dx.NoiseOperatorConfig(
            field_key="image", mode="gaussian", noise_std=0.05, stochastic=True,
            stream_name="augment",
        ),
        rngs=nnx.Rngs(augment=0),
    )  # fmt: skip
    dropout = dx.DropoutOperator(
        dx.DropoutOperatorConfig(
            field_key="image", mode="channel", dropout_rate=0.1, stochastic=True,
            stream_name="augment",
        ),
        rngs=nnx.Rngs(augment=1),
    )  # fmt: skip
    eager_noise, eager_dropout = noise.clone(), dropout.clone()  # same state, used outside jit
    model = Classifier(nnx.Rngs(params=0))
    losses, largest_difference = [], 0.0
    for step in range(STEPS):
        batch = make_batch(step)
        loss, trained_on = train_step(model, noise, dropout, batch)
        eager = eager_dropout(eager_noise(batch)).data.get_value()["image"]
        trained_on, eager = np.asarray(trained_on), np.asarray(eager)
        np.testing.assert_array_equal(trained_on == 0, eager == 0)  # same dropped channels
        np.testing.assert_allclose(trained_on, eager, rtol=0, atol=2.0**-22)
        largest_difference = max(largest_difference, float(np.abs(trained_on - eager).max()))
        losses.append(float(loss))
    assert TRACES == 1, f"train_step traced {TRACES} times"
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5]), losses
    stats = noise.get_operation_stats()
    assert stats == {"applied_count": STEPS * BATCH, "skipped_count": 0}, stats
    print(
        f"loss {losses[0]:.3f} -> {losses[-1]:.3f} over {STEPS} steps; "
        f"jit vs eager: largest difference {largest_difference:.1e}; {stats}"
    )


if __name__ == "__main__":
    main()
