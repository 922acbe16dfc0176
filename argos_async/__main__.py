"""``python -m argos_async``: the command line (see ``argos_async._cli``)."""

from ._cli import run

run()
