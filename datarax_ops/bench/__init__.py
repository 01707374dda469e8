"""The benchmark that speed claims come from (``python -m datarax_ops.bench``, ``nox -s bench``).

``run`` (the case table and the command line), ``kit`` (what every benchmark shares: the
mode table, interleaved timing, formatting), ``records`` (records of any size through the
grain transform), ``training`` (the training settings' cost), ``cache`` (the persistent
compilation cache, cold and warm processes) and ``pipeline`` (datarax's ``Pipeline.step``).
Importing this package does nothing.
"""
