"""The machine and software a run happened on, reported alike by ``datarax-ops verify``
(the report's environment table) and ``datarax-ops bench`` (the ``machine`` record).

Only the standard library is imported here; :func:`environment` imports JAX when it
runs.  scipy and matplotlib are never imported: their installed versions are read
from the package metadata.
"""

from __future__ import annotations

import collections
import os
import platform
import subprocess
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path
from typing import Any

from datarax_ops.compile_cache import active_cache_dir

PACKAGES = ("datarax-ops", "jax", "jaxlib", "flax", "numpy", "scipy", "matplotlib")
"""The distributions whose versions every report names."""


def package_version(name: str) -> str:
    """The installed version of distribution ``name``, or ``"not installed"``."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo, else ``platform.processor()``."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def git_revision(directory: str | Path | None = None) -> str | None:
    """``git describe --always --dirty`` in ``directory`` (default: the folder of this
    package, so the revision is datarax_ops' own), or None outside a git checkout."""
    where = Path(__file__).resolve().parent if directory is None else Path(directory)
    try:
        described = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            cwd=where,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return described.stdout.strip() or None


def device_kinds(kinds: Iterable[str]) -> str:
    """Device kinds counted: ``["cpu"]`` -> ``"1 x cpu"``; kinds sorted by name."""
    counts = collections.Counter(kinds)
    return ", ".join(f"{count} x {kind}" for kind, count in sorted(counts.items()))


def environment() -> dict[str, Any]:
    """This run's environment (JSON-serializable).

    Returns:
      ``python``, ``platform``, ``cpu_model`` (str); ``cpu_count``, ``cpus_usable``
      (int or None); ``backend`` (JAX's default backend); ``devices`` (list of
      ``str(device)``); ``device_kinds`` (``"8 x NVIDIA H200"``); ``versions``
      (dict distribution -> version, :data:`PACKAGES`); ``git`` (str or None);
      ``compile_cache`` (the directory of JAX's persistent compilation cache, or None
      when compiled programs are not kept: ``datarax_ops.compile_cache``).
    """
    import jax

    devices = jax.devices()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": usable,
        "backend": jax.default_backend(),
        "devices": [str(device) for device in devices],
        "device_kinds": device_kinds(device.device_kind for device in devices),
        "versions": {name: package_version(name) for name in PACKAGES},
        "git": git_revision(),
        "compile_cache": active_cache_dir(),
    }


def cache_text(directory: str | None) -> str:
    """Whether compiled programs were kept between runs, and where."""
    if directory is None:
        return "off (every program compiled in this run)"
    return f"on: {directory}"


def as_text(info: dict[str, Any]) -> dict[str, str]:
    """:func:`environment` as one string per item, for a two-column table: the
    versions spread out by distribution name, the devices as counted kinds."""
    cores = f"{info['cpu_count']} ({info['cpus_usable']} usable)"
    return {
        "python": info["python"],
        "platform": info["platform"],
        "cpu": f"{info['cpu_model']}, {cores} cores",
        "backend": info["backend"],
        "devices": info["device_kinds"],
        "git": info["git"] or "-",
        "compile cache": cache_text(info.get("compile_cache")),
        **info["versions"],
    }
