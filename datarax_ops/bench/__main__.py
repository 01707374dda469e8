"""``python -m datarax_ops.bench``: the benchmark (``datarax_ops.bench.run``)."""

from datarax_ops.bench.run import main

if __name__ == "__main__":
    raise SystemExit(main())
