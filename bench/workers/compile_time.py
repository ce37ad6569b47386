"""In-process compile time of one spec file: after a warm-up on a small spec (imports, schema),
time compile_file once, as `netspec check` compiles one spec per process. Prints the seconds.
With --no-gc, Python's cyclic garbage collector is off for the timed compile (a diagnostic).

python -m bench.workers.compile_time chain1000.yaml
"""

import argparse
import gc
import sys
import time

from bench import SPECS
from netspec.compiler import compile_file

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("spec")
    ap.add_argument("--no-gc", action="store_true")
    args = ap.parse_args()
    assert compile_file(SPECS / "lenet5.yaml").ok
    gc.collect()
    if args.no_gc:
        gc.disable()
    t0 = time.perf_counter()
    res = compile_file(args.spec)
    elapsed = time.perf_counter() - t0
    if not res.ok:
        sys.exit(f"{args.spec}: {res.errors[0].message}")
    print(elapsed)
