"""One JAX process of ``tests/test_multiprocess.py``, run as a script (pytest does not collect
it; the test imports it only for its constants).

    python tests/multiprocess_worker.py OUT_DIR --processes N --process-id I [--port PORT]

With ``--processes 2`` the process joins a two-process JAX job through
``jax.distributed.initialize`` (coordinator on ``127.0.0.1:PORT``, CPU backend,
gloo collectives); with ``--processes 1`` it runs alone, with no coordinator:
the one-process run the test compares against.  Either way it does the same two
things and writes ``OUT_DIR/process<I>.npz`` plus ``OUT_DIR/process<I>.json``:

1. **Sharded ``jax.jit``.**  The global batch ``images()`` (float32
   ``BATCH_SHAPE``, the same numbers in every process) is put on a 1-D
   ``Mesh`` over *all* devices of the job with ``NamedSharding(mesh, P("data"))``;
   each process supplies only the rows its own devices hold
   (``jax.make_array_from_process_local_data``).  For every mode of
   ``datarax_ops.modes.MODES`` the operator of ``examples/sharded.py`` (fixed
   seed) is applied twice under ``jax.jit`` by that example's ``sharded_step``
   (operator state replicated; the second call uses the advanced record
   counter).  Each output is gathered to every process
   (``multihost_utils.process_allgather``) and saved as ``<mode>/call<k>``
   (float32 ``BATCH_SHAPE``), the operator's ``get_state()`` after both
   calls as ``<mode>/state/<path>`` (its leaves: ``uint32`` / ``int32`` arrays, e.g.
   ``_base_key``, ``_record_counter``).
2. **grain with ``ShardByJaxProcess``** (when grain is installed).  A
   ``grain.DataLoader`` over ``GRAIN_RECORDS`` records (every record the same
   float32 ``GRAIN_SHAPE`` image, so the output differs only by the noise; an
   int64 ``id``), ``GRAIN_EPOCHS`` epochs, shuffled with ``GRAIN_SEED``,
   ``ShardByJaxProcess(drop_remainder=True)``, augmented by the example's
   operators of every mode but poisson, one after the other, gaussian last
   (``OperatorRandomMap``), no worker processes.  This process's
   records are saved in the order it reads them: ``grain/images`` (float32
   ``(n, *GRAIN_SHAPE)``) and ``grain/ids`` (int64 ``(n,)``).

The JSON file holds ``process_index``, ``process_count``, the global and local
device counts, the platform and whether grain ran.
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import json
import pathlib
import sys
from typing import Any

import jax
import numpy as np
from flax import nnx
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

import datarax_ops as dx

ROOT = pathlib.Path(__file__).resolve().parents[1]
IMAGES_SEED = 11
BATCH_SHAPE = (16, 8, 8, 3)  # (batch, height, width, channels); 16 rows over 8 devices
CALLS = 2  # the second call draws from the record counter the first one advanced
GRAIN_RECORDS, GRAIN_EPOCHS, GRAIN_SEED = 12, 2, 5
GRAIN_SHAPE = (8, 8, 3)


def load_example() -> Any:
    """``examples/sharded.py`` as a module, for its ``build(mode)`` and ``sharded_step``
    (importing it runs nothing; its JAX flags yield to the ones already set)."""
    spec = importlib.util.spec_from_file_location("sharded_example", ROOT / "examples/sharded.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def images() -> np.ndarray:
    """The global batch, float32 ``BATCH_SHAPE`` in [0, 1)."""
    return np.random.default_rng(IMAGES_SEED).random(BATCH_SHAPE, np.float32)


def process_rows(sharding: NamedSharding, shape: tuple[int, ...]) -> slice:
    """The rows of a ``shape`` batch that this process's devices hold under ``sharding``:
    one contiguous block for a 1-D mesh over ``jax.devices()`` (checked)."""
    ranges = set()
    for index in sharding.addressable_devices_indices_map(shape).values():
        assert index is not None
        rows = index[0]
        ranges.add((rows.start or 0, shape[0] if rows.stop is None else rows.stop))
    ordered = sorted(ranges)
    assert all(stop == start for (_, stop), (start, _) in itertools.pairwise(ordered)), ordered
    return slice(ordered[0][0], ordered[-1][1])


def gathered(array: jax.Array) -> np.ndarray:
    """The whole of a (possibly several-process) global array, on this process's host."""
    if jax.process_count() == 1:
        return np.asarray(array)
    from jax.experimental import multihost_utils

    return np.asarray(multihost_utils.process_allgather(array, tiled=True))


def sharded_results() -> dict[str, np.ndarray]:
    """Every mode twice under ``jax.jit`` on the batch sharded over all devices of the job."""
    example = load_example()
    mesh = Mesh(np.array(jax.devices()), ("data",))
    sharding = NamedSharding(mesh, P("data"))
    batch = images()
    local = batch[process_rows(sharding, batch.shape)]
    global_batch = jax.make_array_from_process_local_data(sharding, local, batch.shape)
    replicate = jax.jit(lambda tree: tree, out_shardings=NamedSharding(mesh, P()))
    results: dict[str, np.ndarray] = {}
    for mode in dx.MODES:
        operator = example.build(mode)
        step = example.sharded_step(operator, mesh)
        # Start from state laid out as the step returns it, replicated over the whole job:
        # from host-local arrays, the second call would compile the step again.
        state = replicate(nnx.state(operator))
        for call in range(CALLS):
            output, state = step(state, global_batch)
            results[f"{mode.name}/call{call}"] = gathered(output)
        nnx.update(operator, state)
        for path, value in jax.tree_util.tree_leaves_with_path(operator.get_state()):
            name = "/".join(str(entry.key) for entry in path)  # e.g. "rngs/default/key"
            results[f"{mode.name}/state/{name}"] = gathered(value)
    return results


class SameImage:
    """grain data source: record ``i`` is ``{"image": float32 GRAIN_SHAPE, "id": int64 i}``,
    the same image for every ``i`` (any difference between outputs is the augmentation's)."""

    image = np.random.default_rng(IMAGES_SEED + 1).random(GRAIN_SHAPE, np.float32)

    def __len__(self) -> int:
        return GRAIN_RECORDS

    def __getitem__(self, index: int) -> dict[str, Any]:
        return {"image": self.image, "id": np.int64(index)}

    def __repr__(self) -> str:
        return f"SameImage({GRAIN_RECORDS})"


def grain_results() -> dict[str, np.ndarray]:
    """This process's share of a ``ShardByJaxProcess`` loader, in reading order."""
    import grain

    from datarax_ops.grain_transform import OperatorRandomMap

    example = load_example()
    # Every mode but poisson (its one-record program alone takes ~5 s to compile, and
    # OperatorRandomMap runs the same code for every mode), chained in reverse order:
    # dropout first, gaussian noise last, so that no two outputs are equal by chance.
    operations = [
        OperatorRandomMap(example.build(m)) for m in reversed(dx.MODES) if m.name != "poisson"
    ]
    loader = grain.DataLoader(
        data_source=SameImage(),
        sampler=grain.samplers.IndexSampler(
            num_records=GRAIN_RECORDS,
            num_epochs=GRAIN_EPOCHS,
            shuffle=True,
            seed=GRAIN_SEED,
            shard_options=grain.sharding.ShardByJaxProcess(drop_remainder=True),
        ),
        operations=operations,
        worker_count=0,
    )
    records = [(np.array(r["image"]), int(r["id"])) for r in loader]
    return {
        "grain/images": np.stack([image for image, _ in records]),
        "grain/ids": np.array([record_id for _, record_id in records], np.int64),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=pathlib.Path)
    parser.add_argument("--processes", type=int, choices=(1, 2), required=True)
    parser.add_argument("--process-id", type=int, required=True)
    parser.add_argument("--port", type=int, help="the coordinator's port (--processes 2)")
    args = parser.parse_args(argv)
    if args.processes > 1:
        if "jax_cpu_collectives_implementation" in getattr(jax.config, "values", {}):
            jax.config.update("jax_cpu_collectives_implementation", "gloo")  # else the default
        address = f"127.0.0.1:{args.port}"
        jax.distributed.initialize(
            coordinator_address=address,
            coordinator_bind_address=address,  # loopback only
            num_processes=args.processes,
            process_id=args.process_id,
            initialization_timeout=30,
        )
    assert jax.process_count() == args.processes and jax.process_index() == args.process_id
    results = sharded_results()
    try:
        import grain  # noqa: F401
    except ImportError:
        has_grain = False
    else:
        has_grain = True
        results.update(grain_results())
    arrays: dict[str, Any] = results
    np.savez(args.out / f"process{args.process_id}.npz", **arrays)
    meta = {
        "process_index": jax.process_index(),
        "process_count": jax.process_count(),
        "devices": len(jax.devices()),
        "local_devices": len(jax.local_devices()),
        "platform": jax.devices()[0].platform,
        "grain": has_grain,
    }
    (args.out / f"process{args.process_id}.json").write_text(json.dumps(meta), encoding="utf-8")
    if args.processes > 1:
        jax.distributed.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
