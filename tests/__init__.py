"""The test suite (a package, so modules import helpers as ``tests.factory``)."""
