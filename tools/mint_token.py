"""Kept for old scripts: ``python3 tools/mint_token.py token alice ...`` is ``bpm token jwt alice ...``,
``python3 tools/mint_token.py api-key crm`` is ``bpm token api-key crm``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bpm.cli import cli


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["token"]:
        args = ["jwt", *args[1:]]
    cli.main(args=["token", *args], prog_name="bpm", standalone_mode=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
