"""Exceptions that are two built-in types at once, so code written for datarax catches them.

Where datarax 0.1.4 raises one type and this project documents another, the
exception is a subclass of both: ``except KeyError`` (this project's
documented type) and ``pytest.raises(ValueError, match=...)`` (datarax's)
both catch it.  Their ``str()`` is the plain message (no ``KeyError`` quoting),
exactly as datarax's ``ValueError`` prints it.
"""

from __future__ import annotations


class _PlainMessage(Exception):
    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class ParamsKeyError(_PlainMessage, KeyError, ValueError):
    """``random_params`` given to ``apply`` lack the mode's key.

    A ``KeyError`` (this project's documented type) and a ``ValueError``
    (what datarax raises, "Stochastic mode requires '<key>' in random_params...").
    """


class RngStreamError(_PlainMessage, ValueError, KeyError):
    """A stochastic operator's ``rngs`` lack its stream.

    A ``ValueError`` (this project's documented type) and a ``KeyError`` (what
    datarax lets through from flax: "No RngStream named '<name>' found in Rngs.").
    """
