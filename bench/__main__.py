"""Run every benchmark, one fresh process each (so memory and imports do not leak between them).

    python -m bench                 # small sizes, about 15 minutes on 2 cores
    python -m bench --full          # the issue's full sizes (1M vectors, 200 phone photos): over an hour
    python -m bench --only indexing inference

The soak test (bench/soak.py) is separate: it runs for a set time, not to a size.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

from bench.common import ROOT

BENCHMARKS = ("indexing", "inference", "query", "ann", "dupes", "dupes_quality", "startup", "watch", "map", "cluster")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--full", action="store_true", help="the issue's full sizes (slow)")
    p.add_argument("--only", nargs="+", choices=BENCHMARKS, default=list(BENCHMARKS), metavar="NAME",
                   help=f"run only these: {', '.join(BENCHMARKS)}")
    args = p.parse_args(argv)
    print(f"clipfind benchmarks ({'full' if args.full else 'small'} sizes), {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f} at start", flush=True)
    failed = []
    for name in args.only:
        start = time.monotonic()
        print(f"\n#### bench.{name}", flush=True)
        code = subprocess.call([sys.executable, "-m", f"bench.{name}", *(["--full"] if args.full else [])], cwd=ROOT)
        print(f"#### bench.{name}: {time.monotonic() - start:.0f} s" + (f", exit code {code}" if code else ""),
              flush=True)
        if code:
            failed.append(name)
    print(f"\nload average {os.getloadavg()[0]:.1f} at the end (other work on the machine slows every figure)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
