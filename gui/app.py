"""Entry point of `clipfind-gui`."""

from __future__ import annotations

import sys


def main() -> int:
    print("clipfind-gui: the desktop app is not built yet; use the `clipfind` command", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
