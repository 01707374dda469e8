"""datarax_ops stages in datarax's own Pipeline: only the imports change.

datarax's augmentation recipe, with its noise and dropout operators taken from datarax_ops
instead of ``datarax.operators.modality``.  Runs on datarax 0.1.4 and 0.1.17
(``pip install 'datarax-ops[datarax]'``) and checks what datarax promises of a pipeline:

* a record's augmentation depends on the record, not on the batch size;
* a resumed pipeline continues exactly where it stopped.

    python examples/datarax_pipeline.py
"""

from __future__ import annotations

import numpy as np
from datarax import Pipeline
from datarax.operators.modality.image.brightness_operator import (
    BrightnessOperator,
    BrightnessOperatorConfig,
)
from datarax.sources import MemorySource, MemorySourceConfig
from flax import nnx

import datarax_ops  # for enable_compile_cache (optional: a faster second run)

# The only change from a datarax-only pipeline: these two imports.
from datarax_ops import (
    DropoutOperator,
    DropoutOperatorConfig,
    NoiseOperator,
    NoiseOperatorConfig,
)

RECORDS = 64
IMAGES = np.random.default_rng(0).random((RECORDS, 32, 32, 3), dtype=np.float32)
LABELS = np.arange(RECORDS) % 10


def build(batch_size: int) -> Pipeline:
    """Brightness (datarax's), then gaussian noise and channel dropout (ours)."""
    source = MemorySource(
        MemorySourceConfig(), {"image": IMAGES, "label": LABELS}, rngs=nnx.Rngs(0)
    )
    stages = [
        BrightnessOperator(
            BrightnessOperatorConfig(
                field_key="image",
                brightness_range=(-0.1, 0.1),
                stochastic=True,
                stream_name="augment",
            ),
            rngs=nnx.Rngs(augment=1),
        ),
        NoiseOperator(
            NoiseOperatorConfig(
                field_key="image",
                mode="gaussian",
                noise_std=0.05,
                stochastic=True,
                stream_name="augment",
            ),
            rngs=nnx.Rngs(augment=2),
        ),
        DropoutOperator(
            DropoutOperatorConfig(
                field_key="image",
                mode="channel",
                dropout_rate=0.1,
                stochastic=True,
                stream_name="augment",
            ),
            rngs=nnx.Rngs(augment=3),
        ),
    ]
    return Pipeline(source=source, stages=stages, batch_size=batch_size, rngs=nnx.Rngs(0))


def images_of(batches) -> np.ndarray:
    return np.concatenate([np.asarray(batch["image"]) for batch in batches])


def main() -> None:
    # keeps compiled programs between runs (~/.cache/datarax_ops/jax-compilation-cache)
    datarax_ops.enable_compile_cache()
    by_16 = images_of(build(16))
    by_8 = images_of(build(8))
    assert by_16.shape == IMAGES.shape and not np.array_equal(by_16, IMAGES)
    assert np.array_equal(by_16, by_8), "a record's augmentation changed with the batch size"

    session = iter(build(16))
    head = [next(session), next(session)]
    resumed = iter(build(16))
    resumed.set_state(session.get_state())  # the iterator's checkpoint (position, RNG counts)
    assert np.array_equal(images_of(head + list(resumed)), by_16), "resume did not continue"

    print(
        f"{RECORDS} records through Brightness -> datarax_ops gaussian -> datarax_ops channel "
        "dropout: the same at batch sizes 16 and 8, and after a resume"
    )


if __name__ == "__main__":
    main()
