"""``python -m bpm.cli``: the ``bpm`` command without the console script."""

from bpm.cli import main

main()
