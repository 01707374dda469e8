"""Two JAX processes give one process's bits: sharded ``jax.jit``, grain's ``ShardByJaxProcess``.

The test starts three Pythons running ``tests/multiprocess_worker.py`` (its
docstring says what each computes), all with ``JAX_PLATFORMS=cpu``:

* two processes of one JAX job, each with 4 forced CPU devices
  (``--xla_force_host_platform_device_count=4``), joined by
  ``jax.distributed.initialize`` through a coordinator on a free loopback port
  (gloo collectives): a global mesh of 8 devices, of which each process holds 4;
* one process alone, with one device: the reference.

It proves, for every mode of ``datarax_ops.modes.MODES``: the batch sharded
over the 8 devices of both processes, augmented under ``jax.jit`` and gathered
back, equals the one-process result bit for bit, on the first call and on the
second (drawn from the advanced record counter); the operator state after both
calls is identical in the two processes and equal to the one-process state.
And for grain (when installed): with ``ShardByJaxProcess``, the records of
process ``p`` are the global positions ``p, p + 2, p + 4, ...`` of the stream
(grain's ``_SamplerMapDataset`` reads sampler index ``i * shard_count +
shard_index``), each augmented exactly as the one-process loader augments that
position, and each process reads its own half of the records once per epoch
(``even_split``: process ``p`` owns ids ``[p * n / 2, (p + 1) * n / 2)``).

Every process has a time limit; a process still running when the test ends
is killed, which frees the coordinator's port.
"""

from __future__ import annotations

import json
import os
import pathlib
import socket
import subprocess
import sys
import time
from typing import Any

import numpy as np
import pytest

import datarax_ops as dx
from tests import multiprocess_worker as worker

# Starts processes or runs whole commands: `nox -s slow` (CI runs it after `tests`).
pytestmark = pytest.mark.slow

PROCESSES = 2
DEVICES_PER_PROCESS = 4
TIME_LIMIT_S = 150  # per run of the three processes (they take ~35 s on 2 cores)
WORKER = pathlib.Path(worker.__file__)


def free_loopback_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0, then closed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_worker(
    out: pathlib.Path, processes: int, process_id: int, port: int | None, devices: int
) -> subprocess.Popen:
    """A running worker process with ``devices`` CPU devices; its stdout and stderr go to
    ``out/log<process_id>.txt``."""
    out.mkdir(parents=True, exist_ok=True)
    env = dict(
        os.environ,
        JAX_PLATFORMS="cpu",
        XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}",
    )
    command = [sys.executable, str(WORKER), str(out), "--processes", str(processes)]
    command += ["--process-id", str(process_id)]
    command += [] if port is None else ["--port", str(port)]
    with open(out / f"log{process_id}.txt", "w", encoding="utf-8") as log:  # the child keeps it
        return subprocess.Popen(
            command, cwd=WORKER.parents[1], env=env, stdout=log, stderr=subprocess.STDOUT
        )


def wait_all(processes: list[subprocess.Popen], logs: list[pathlib.Path]) -> None:
    """Waits for every process until ``TIME_LIMIT_S`` in all; kills what still runs, then
    fails with the logs if any process timed out or exited non-zero."""
    deadline = time.monotonic() + TIME_LIMIT_S
    try:
        for process in processes:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        pass
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    codes = [process.returncode for process in processes]
    if any(codes):
        tails = "\n".join(f"--- {log} ---\n{log.read_text()[-3000:]}" for log in logs)
        pytest.fail(f"worker exit codes {codes} (negative: killed at the time limit)\n{tails}")


def load(out: pathlib.Path, process_id: int) -> tuple[dict, dict[str, np.ndarray]]:
    meta = json.loads((out / f"process{process_id}.json").read_text(encoding="utf-8"))
    with np.load(out / f"process{process_id}.npz") as arrays:
        return meta, dict(arrays)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """``{"job": [(meta, arrays) of process 0, of process 1], "alone": (meta, arrays)}``:
    each worker's JSON and its npz arrays by name."""
    job_dir = tmp_path_factory.mktemp("job")
    alone_dir = tmp_path_factory.mktemp("alone")
    port = free_loopback_port()
    started = [
        start_worker(job_dir, PROCESSES, i, port, DEVICES_PER_PROCESS) for i in range(PROCESSES)
    ]
    started.append(start_worker(alone_dir, 1, 0, None, 1))
    logs = [job_dir / f"log{i}.txt" for i in range(PROCESSES)] + [alone_dir / "log0.txt"]
    wait_all(started, logs)
    return {
        "job": [load(job_dir, i) for i in range(PROCESSES)],
        "alone": load(alone_dir, 0),
    }


def test_two_processes_form_one_job_of_eight_cpu_devices(runs):
    for process_id, (meta, _) in enumerate(runs["job"]):
        assert meta == {
            "process_index": process_id,
            "process_count": PROCESSES,
            "devices": PROCESSES * DEVICES_PER_PROCESS,
            "local_devices": DEVICES_PER_PROCESS,
            "platform": "cpu",
            "grain": meta["grain"],
        }
    alone_meta = runs["alone"][0]
    assert alone_meta["process_count"] == 1 and alone_meta["devices"] == 1


@pytest.mark.parametrize("mode", [mode.name for mode in dx.MODES])
def test_sharded_jit_over_two_processes_equals_one_process(runs, mode):
    alone = runs["alone"][1]
    for call in range(worker.CALLS):
        key = f"{mode}/call{call}"
        expected = alone[key]
        assert expected.shape == worker.images().shape and expected.dtype == np.float32
        for process_id, (_, arrays) in enumerate(runs["job"]):
            np.testing.assert_array_equal(arrays[key], expected, err_msg=f"process {process_id}")
    # the second call drew fresh noise from the advanced counter, and noise was applied at all
    assert not np.array_equal(alone[f"{mode}/call0"], alone[f"{mode}/call1"])
    assert not np.array_equal(alone[f"{mode}/call0"], worker.images())


@pytest.mark.parametrize("mode", [mode.name for mode in dx.MODES])
def test_operator_state_is_identical_in_both_processes(runs, mode):
    alone = runs["alone"][1]
    prefix = f"{mode}/state/"
    names = sorted(key for key in alone if key.startswith(prefix))
    assert prefix + "_base_key" in names and prefix + "_record_counter" in names
    for process_id, (_, arrays) in enumerate(runs["job"]):
        assert sorted(key for key in arrays if key.startswith(prefix)) == names
        for name in names:
            np.testing.assert_array_equal(arrays[name], alone[name], err_msg=f"{process_id} {name}")
    counter = alone[prefix + "_record_counter"]  # (high, low) words of the 64-bit counter
    assert counter.tolist() == [0, worker.CALLS * worker.images().shape[0]]


def test_grain_shard_by_jax_process_gives_each_position_its_one_process_augmentation(runs):
    alone_meta, alone = runs["alone"]
    if not alone_meta["grain"]:
        pytest.skip("grain is not installed")
    records, epochs = worker.GRAIN_RECORDS, worker.GRAIN_EPOCHS
    expected = alone["grain/images"]
    assert expected.shape == (records * epochs, *worker.GRAIN_SHAPE)
    assert len({image.tobytes() for image in expected}) == len(expected)  # every position differs
    per_epoch = records // PROCESSES
    for process_id, (_, arrays) in enumerate(runs["job"]):
        images, ids = arrays["grain/images"], arrays["grain/ids"]
        assert images.shape == (per_epoch * epochs, *worker.GRAIN_SHAPE)
        positions = np.arange(len(images)) * PROCESSES + process_id
        np.testing.assert_array_equal(images, expected[positions], err_msg=f"process {process_id}")
        owned = set(range(process_id * per_epoch, (process_id + 1) * per_epoch))
        for epoch in range(epochs):
            assert set(ids[epoch * per_epoch : (epoch + 1) * per_epoch].tolist()) == owned
