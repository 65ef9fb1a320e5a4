"""``python -m bench [--quick] [B1 B2 ...]``: run the benchmarks one after another.

Each appends its figures to bench/RESULTS.md.
"""

from __future__ import annotations

import subprocess
import sys

SCRIPTS = {
    "B1": "bench.b1_fire_time",
    "B2": "bench.b2_burst",
    "B3": "bench.b3_vk_quota",
    "B4": "bench.b4_cost_vs_queue",
    "B5": "bench.b5_start",
    "B6": "bench.b6_cli_add",
    "B7": "bench.b7_idle",
    "B8": "bench.b8_cpu_per_post",
    "B9": "bench.b9_isolation",
    "B10": "bench.b10_postgres_scaleout",
    "B11": "bench.b11_report",
}


def main() -> int:
    flags = [a for a in sys.argv[1:] if a.startswith("-")]
    wanted = [a.upper() for a in sys.argv[1:] if not a.startswith("-")] or list(SCRIPTS)
    failed = []
    for name in wanted:
        print(f"=== {name}: python -m {SCRIPTS[name]} {' '.join(flags)}", flush=True)
        if subprocess.run([sys.executable, "-m", SCRIPTS[name], *flags]).returncode != 0:
            failed.append(name)
    if failed:
        print("failed to run: " + ", ".join(failed), file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
