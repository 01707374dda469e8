"""``python -m datarax_ops``: the ``datarax-ops`` command (``verify``, ``demo``, ``bench``)."""

from datarax_ops.cli import main

raise SystemExit(main())
