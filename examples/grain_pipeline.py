"""A grain pipeline that augments every record with datarax_ops operators.

``OperatorRandomMap`` turns an operator into a grain random map whose noise comes
from grain's per-record generator (``datarax_ops/grain_transform.py``).  The
example builds a ``grain.DataLoader`` (shuffled in-memory records, gaussian noise
then pixel dropout, two epochs) and asserts that:

* a loader with a worker process gives exactly the stream of the in-process one;
* a loader restarted from ``iterator.get_state()`` saved mid-epoch continues it
  exactly (here in a fresh worker process, as after a crash);
* the same record gets different noise in the two epochs.

``datarax_ops.enable_compile_cache()`` keeps the compiled programs between runs (in
``~/.cache/datarax_ops/jax-compilation-cache``), so a second run starts faster.

Records are compared one by one: with worker processes, grain's ``Batch``
operation batches within each worker, so batch composition depends on
``worker_count`` (a grain design choice); the records and their noise do not.
Batch after the loader (or with ``MapDataset.batch``) for worker-independent batches.
``tests/test_grain.py`` checks the same with 2 workers (one worker keeps this quick).
"""

from __future__ import annotations

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")  # also inherited by grain's spawned workers

import grain
import numpy as np
from absl import flags
from flax import nnx

import datarax_ops as dx
from datarax_ops.grain_transform import OperatorRandomMap

RECORDS, EPOCHS, WORKERS = 16, 2, 1


class Images:
    """In-memory data source: record ``i`` is ``{"image": float32 (8, 8, 3), "id": int64 i}``."""

    def __init__(self) -> None:
        self.images = np.random.default_rng(0).random((RECORDS, 8, 8, 3), np.float32)

    def __len__(self) -> int:
        return RECORDS

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        return {"image": self.images[index], "id": np.int64(index)}

    def __repr__(self) -> str:  # grain checks it when restoring a checkpoint
        return f"Images({RECORDS})"


def make_loader(worker_count: int) -> grain.DataLoader:
    noise = dx.NoiseOperator(
        dx.NoiseOperatorConfig(field_key="image", mode="gaussian", noise_std=0.1, stochastic=True),
        rngs=nnx.Rngs(0),
    )
    dropout = dx.DropoutOperator(
        dx.DropoutOperatorConfig(
            field_key="image", mode="pixel", dropout_rate=0.2, stochastic=True
        ),
        rngs=nnx.Rngs(1),
    )
    sampler = grain.samplers.IndexSampler(
        num_records=RECORDS,
        num_epochs=EPOCHS,
        shuffle=True,
        seed=42,
        shard_options=grain.sharding.NoSharding(),
    )
    return grain.DataLoader(
        data_source=Images(),
        sampler=sampler,
        operations=[OperatorRandomMap(noise), OperatorRandomMap(dropout)],
        worker_count=worker_count,
    )


def take(iterator, count: int | None = None) -> list[dict[str, np.ndarray]]:
    """Up to ``count`` records, copied out of grain's shared memory."""
    records = []
    for record in iterator:
        records.append({key: np.array(value) for key, value in record.items()})
        if count is not None and len(records) == count:
            break
    return records


def assert_same(first: list[dict], second: list[dict]) -> None:
    assert len(first) == len(second), (len(first), len(second))
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a["id"], b["id"])
        np.testing.assert_array_equal(a["image"], b["image"])


def main() -> None:
    # Compiled programs are kept in the user's cache directory, so the next run (and the
    # worker processes started below) load them instead of compiling again.
    dx.enable_compile_cache()
    # grain 0.2.18's workers read an absl flag; plain scripts must mark flags parsed
    # (google/grain#1355).
    if not flags.FLAGS.is_parsed():
        flags.FLAGS.mark_as_parsed()
    uninterrupted = take(iter(make_loader(worker_count=0)))
    assert len(uninterrupted) == RECORDS * EPOCHS

    iterator = iter(make_loader(worker_count=WORKERS))
    head = take(iterator, 11)  # stop inside the first epoch
    saved = iterator.get_state()  # bytes: what a checkpoint stores
    del iterator  # a crash would end it here; its worker processes stop
    restarted = iter(make_loader(worker_count=WORKERS))
    restarted.set_state(saved)
    assert_same(head + take(restarted), uninterrupted)

    epochs = [
        {int(r["id"]): r["image"] for r in uninterrupted[e * RECORDS : (e + 1) * RECORDS]}
        for e in range(EPOCHS)
    ]
    assert all(not np.array_equal(epochs[0][i], epochs[1][i]) for i in range(RECORDS))
    print(
        f"{len(uninterrupted)} records: {WORKERS} worker process = in-process, restart "
        "after 11 records continues identically, every record re-noised in epoch 2"
    )


if __name__ == "__main__":
    main()
