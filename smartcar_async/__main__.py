"""``python -m smartcar_async``: the command line (also installed as ``smartcar-async``)."""

from __future__ import annotations

import sys

from ._cli import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
