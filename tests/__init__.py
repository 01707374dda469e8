"""The test suite (a package, so modules import helpers as ``tests.stats_kit``)."""
