"""Conformance tooling: the statistical kit, the checks ``datarax-ops verify`` runs, its report.

Everything here needs the ``verify`` extra (``scipy``, ``matplotlib``, ``rich``,
``Pillow``), so ``import datarax_ops`` does not import this package; import the
modules directly (``from datarax_ops.conformance import stats``).
"""
