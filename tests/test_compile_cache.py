"""Compiled programs kept between runs (``datarax_ops.compile_cache``).

* importing datarax_ops and using an operator leaves JAX's configuration alone;
* ``enable_compile_cache`` refuses a path it cannot write, naming it, and leaves JAX as
  it was;
* the command line's cache: ``--no-compile-cache`` / ``--compile-cache DIR`` beat
  ``DATARAX_OPS_COMPILE_CACHE`` (a directory, or off / 0 / none), which beats the XDG
  default; every command (verify, demo, bench) takes the flags;
* (slow: fresh processes) ``op(batch)``'s bytes are the same without the cache, on an
  empty one and on the filled one, while the warm process loads its programs instead of
  compiling them; ``datarax-ops verify`` with the environment variable fills the
  directory and says so in its report.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib

import pytest

import datarax_ops
from datarax_ops import cli, compile_cache
from datarax_ops.bench import cache as bench_cache
from datarax_ops.bench import run as bench_run
from datarax_ops.cli_input import InputError
from datarax_ops.compile_cache import ENV_VAR, cache_setting, default_cache_dir
from datarax_ops.conformance import gallery
from datarax_ops.environment import as_text, cache_text
from tests.factory import run_python

SUBDIR = pathlib.Path("datarax_ops") / "jax-compilation-cache"


# --------------------------------------------------------------------------- #
# Where the cache lives                                                        #
# --------------------------------------------------------------------------- #
def test_default_is_the_xdg_cache_home():
    assert default_cache_dir({"XDG_CACHE_HOME": "/xdg"}) == pathlib.Path("/xdg") / SUBDIR
    home_cache = pathlib.Path.home() / ".cache" / SUBDIR
    assert default_cache_dir({}) == home_cache
    assert default_cache_dir({"XDG_CACHE_HOME": ""}) == home_cache
    assert default_cache_dir({"XDG_CACHE_HOME": "relative/dir"}) == home_cache  # XDG: ignored


@pytest.mark.parametrize(
    ("flag_dir", "flag_off", "variable", "expected"),
    [
        (None, False, None, "/xdg/" + SUBDIR.as_posix()),  # nothing said: the XDG default
        (None, False, "", "/xdg/" + SUBDIR.as_posix()),
        (None, False, "/from/env", "/from/env"),
        (None, False, "off", None),
        (None, False, " OFF ", None),
        (None, False, "0", None),
        (None, False, "None", None),
        ("/from/flag", False, None, "/from/flag"),
        ("/from/flag", False, "/from/env", "/from/flag"),  # the flag beats the variable
        ("/from/flag", False, "off", "/from/flag"),
        (None, True, "/from/env", None),
        (None, True, None, None),
    ],
)
def test_flags_beat_the_variable_which_beats_the_default(
    flag_dir: str | None, flag_off: bool, variable: str | None, expected: str | None
):
    environ = {"XDG_CACHE_HOME": "/xdg"}
    if variable is not None:
        environ[ENV_VAR] = variable
    found = cache_setting(flag_dir, flag_off, environ)
    assert found == (None if expected is None else pathlib.Path(expected))


def _cache_flags(parse) -> list[tuple[str | None, bool]]:
    """``(compile_cache, no_compile_cache)`` as ``parse(argv)`` reads three command lines."""
    argvs = ([], ["--compile-cache", "/tmp/c"], ["--no-compile-cache"])
    return [(a.compile_cache, a.no_compile_cache) for a in map(parse, argvs)]


@pytest.mark.parametrize("command", ["verify", "demo", "bench"])
def test_every_command_takes_the_cache_flags(command: str):
    parse = {
        "verify": lambda argv: cli.verify_parser().parse_args(argv),
        "demo": gallery.parse_args,
        "bench": bench_run.parse_args,
    }[command]
    assert _cache_flags(parse) == [(None, False), ("/tmp/c", False), (None, True)]
    with pytest.raises(InputError, match="not allowed with"):  # one or the other
        parse(["--compile-cache", "/tmp/c", "--no-compile-cache"])


# --------------------------------------------------------------------------- #
# Bad directories                                                              #
# --------------------------------------------------------------------------- #
def _jax_cache_options() -> dict[str, object]:
    import jax

    names = compile_cache.jax_settings(pathlib.Path("/unused"))
    return {name: getattr(jax.config, name) for name in names}


@pytest.mark.parametrize("where", ["a file", "below a file"])
def test_a_path_that_is_not_a_writable_directory_is_refused(tmp_path: pathlib.Path, where: str):
    blocker = tmp_path / "plain-file"
    blocker.write_text("not a directory")
    path = blocker if where == "a file" else blocker / "cache"
    before = _jax_cache_options()
    with pytest.raises(ValueError, match="is not a writable directory") as raised:
        datarax_ops.enable_compile_cache(path)
    assert str(path) in str(raised.value)
    assert _jax_cache_options() == before


def test_the_commands_refuse_it_in_one_line(tmp_path: pathlib.Path, capsys):
    blocker = tmp_path / "plain-file"
    blocker.write_text("not a directory")
    args = argparse.Namespace(compile_cache=str(blocker), no_compile_cache=False)
    with pytest.raises(SystemExit) as raised:
        compile_cache.enable_from_args(args, "datarax-ops verify", environ={})
    assert raised.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("datarax-ops verify: error: "), lines
    assert str(blocker) in lines[0] and "--no-compile-cache" in lines[0]


def test_off_does_nothing():
    before = _jax_cache_options()
    args = argparse.Namespace(compile_cache=None, no_compile_cache=False)
    assert compile_cache.enable_from_args(args, "datarax-ops verify", {ENV_VAR: "off"}) is None
    assert _jax_cache_options() == before


def test_the_environment_says_whether_and_where():
    assert cache_text(None).startswith("off")
    assert cache_text("/some/dir") == "on: /some/dir"
    text = as_text(
        {
            "python": "3",
            "platform": "p",
            "cpu_model": "c",
            "cpu_count": 2,
            "cpus_usable": 2,
            "backend": "cpu",
            "device_kinds": "1 x cpu",
            "git": None,
            "versions": {},
            "compile_cache": "/some/dir",
        }
    )
    assert text["compile cache"] == "on: /some/dir"


# --------------------------------------------------------------------------- #
# Fresh processes                                                              #
# --------------------------------------------------------------------------- #
# Prints JAX's cache options after importing datarax_ops and running an operator.
UNTOUCHED = """
import json, jax, numpy as np
from flax import nnx
import datarax_ops as dx
op = dx.NoiseOperator(dx.NoiseOperatorConfig(field_key="image", mode="gaussian",
    noise_std=0.1, stochastic=True), rngs=nnx.Rngs(0))
images = np.random.default_rng(0).random((2, 8, 8, 3), np.float32)
np.asarray(op(dx.Batch.from_parts(data={"image": images}, states={})).data.get_value()["image"])
print(json.dumps({name: getattr(jax.config, name) for name in (
    "jax_compilation_cache_dir", "jax_persistent_cache_min_compile_time_secs",
    "jax_persistent_cache_min_entry_size_bytes")}))
"""


@pytest.mark.slow
def test_importing_and_using_datarax_ops_leaves_jax_config_alone(tmp_path: pathlib.Path):
    # even with the command line's variable and XDG set: only an explicit call enables it
    out = run_python(UNTOUCHED, **{ENV_VAR: str(tmp_path / "env"), "XDG_CACHE_HOME": str(tmp_path)})
    assert json.loads(out.strip().splitlines()[-1]) == {
        "jax_compilation_cache_dir": None,
        "jax_persistent_cache_min_compile_time_secs": 1.0,
        "jax_persistent_cache_min_entry_size_bytes": 0,
    }
    assert not any(tmp_path.iterdir())


# Two jitted op(batch) calls (fresh noise each) of three modes in one process, with the
# cache in sys.argv[1] or none ("off"); prints each output's bytes as hex, and how many
# programs came from the cache.
OUTPUTS = """
import sys, json, jax, numpy as np
from flax import nnx
import datarax_ops as dx
from datarax_ops.bench.cache import count_cache_hits
if sys.argv[1] != "off":
    dx.enable_compile_cache(sys.argv[1])
images = np.random.default_rng(7).random((3, 12, 10, 3), np.float32)
configs = {
    "gaussian": dx.NoiseOperatorConfig(field_key="image", mode="gaussian", noise_std=0.1,
        stochastic=True),
    "poisson": dx.NoiseOperatorConfig(field_key="image", mode="poisson", lam_scale=30.0,
        stochastic=True),
    "pixel": dx.DropoutOperatorConfig(field_key="image", mode="pixel", dropout_rate=0.3,
        stochastic=True),
}
outputs = {}
with count_cache_hits() as hits:
    for name, config in configs.items():
        cls = dx.NoiseOperator if name != "pixel" else dx.DropoutOperator
        jitted = nnx.jit(lambda operator, batch: operator(batch))
        operator = cls(config, rngs=nnx.Rngs(3))
        batch = dx.Batch.from_parts(data={"image": images}, states={})
        first = jitted(operator, batch).data.get_value()["image"]
        second = jitted(operator, batch).data.get_value()["image"]  # the state moved on
        outputs[name] = [np.asarray(first).tobytes().hex(), np.asarray(second).tobytes().hex()]
print(json.dumps({"outputs": outputs, "cache_hits": hits[0]}))
"""


@pytest.mark.slow
def test_outputs_are_bit_identical_with_and_without_the_cache(tmp_path: pathlib.Path):
    cache = tmp_path / "cache"

    def run(where: str) -> dict:
        script = f"import sys; sys.argv = ['outputs', {where!r}]\n" + OUTPUTS
        return json.loads(run_python(script).strip().splitlines()[-1])

    off, cold = run("off"), run(str(cache))
    files_after_cold = sorted(path.name for path in cache.iterdir())
    warm = run(str(cache))
    assert files_after_cold, "the first run kept no program"
    assert cold["cache_hits"] == 0 and off["cache_hits"] == 0
    assert warm["cache_hits"] >= len(off["outputs"]), "the second run compiled afresh"
    assert off["outputs"] == cold["outputs"] == warm["outputs"]
    for first, second in off["outputs"].values():  # the operators did draw noise
        assert first != second


@pytest.mark.slow
def test_verify_keeps_its_programs_where_the_variable_says(tmp_path: pathlib.Path):
    cache, report = tmp_path / "from-variable", tmp_path / "report.html"
    argv = ["verify", "--seed", "0", "--mode", "gaussian", "--samples", "1000"]
    argv += ["--no-gallery", "--no-training", "--out", str(report)]
    run_python(
        f"import sys; from datarax_ops.cli import main; sys.exit(main({argv!r}))",
        **{ENV_VAR: str(cache), "XDG_CACHE_HOME": str(tmp_path / "xdg")},
    )
    assert any(cache.iterdir()), "verify kept no program"
    assert not (tmp_path / "xdg" / SUBDIR).exists()  # the variable moved it from the default
    assert f"on: {cache}" in report.read_text(encoding="utf-8")


def test_the_public_call_is_exported():
    assert "enable_compile_cache" in datarax_ops.__all__
    assert datarax_ops.enable_compile_cache is compile_cache.enable_compile_cache


def test_the_suite_never_fills_the_home_cache():
    # tests/conftest.py: commands run by tests (in-process or not) keep nothing by default
    assert os.environ.get(ENV_VAR) == "off"


def _workload(name: str, cold_s: float, warm_s: float | None) -> dict:
    """A workload of ``bench.cache.measure_cache`` (warm None: the warm process failed)."""
    cache = {"files": 3, "bytes": 2_000_000}
    warm = {"wall_s": warm_s, "exit_status": 0, "cache": cache}
    if warm_s is None:
        warm.update(exit_status=-9, error="killed")
    ratio = None if warm_s is None else warm_s / cold_s
    return {
        "name": name,
        "command": f"{name} --compile-cache DIR",
        "figure": "wall_s",
        "cold": {"wall_s": cold_s, "exit_status": 0, "cache": cache, "programs": 15},
        "warm": warm,
        "ratio": ratio,
        "goal": bench_cache.GOALS[name],
        "goal_met": ratio is not None and ratio <= bench_cache.GOALS[name],
    }


def test_the_bench_section_shows_each_ratio_against_its_goal():
    report = {
        "count": 400,
        "sides": [64, 1024],
        "records_mode": "poisson30",
        "workloads": [_workload("verify", 200.0, 50.0), _workload("records", 100.0, None)],
    }
    header, (verify, records) = bench_cache.cache_table(report)
    row = dict(zip(header, verify, strict=True))
    assert (row["warm/cold"], row["goal"], row["met"]) == ("0.250", "<= 0.4", "yes")
    row = dict(zip(header, records, strict=True))
    assert (row["warm/cold"], row["met"]) == ("failed: warm", "no")
    assert row["programs (cold; warm)"] == "15; -"
    text = "\n".join(bench_cache.render_cache(report))
    assert "| verify | 200 | 50.0 | 0.250 | <= 0.4 | yes |" in text
