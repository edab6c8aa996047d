"""Run every benchmark script in this folder (bench_*.py), one after another (`make bench`).

Each script runs the reference and ours side by side in one process and prints its own
table; results also land in benchmarks/results/*.json. Scripts run in separate processes
so that one's memory and threads do not disturb the next. A failing script is reported
and the others still run; the exit status says whether all succeeded.

    python benchmarks/run_all.py                 # everything
    python benchmarks/run_all.py pretrain infer  # only scripts whose name contains a word
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else argv
    scripts = sorted(p for p in HERE.glob("bench_*.py") if not words or any(w in p.stem for w in words))
    if not scripts:
        print(f"no benchmark script matches {words}", file=sys.stderr)
        return 2
    failed = []
    for script in scripts:
        print(f"\n=== {script.name} ===", flush=True)
        start = time.perf_counter()
        code = subprocess.call([sys.executable, str(script)], cwd=HERE.parent)
        print(f"=== {script.name}: {'ok' if code == 0 else f'FAILED ({code})'} "
              f"in {time.perf_counter() - start:.0f}s ===", flush=True)
        if code:
            failed.append(script.name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
