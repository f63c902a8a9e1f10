"""Run every benchmark and print one table: `.venv/bin/python -m bench [NAME ...]`.

Each benchmark module has `main() -> dict` of named figures; a module that cannot run here
(for example vectorbt not installed) returns {"skipped": reason}.
"""

from __future__ import annotations

import importlib
import sys
import time

BENCHMARKS = {
    "rules": "bench.rules",              # rule evaluation + planning, 20 assets, 90 days
    "poll": "bench.poll_cycle",          # poll concurrency against the loopback exchange
    "alerts": "bench.alerts",            # trigger → fake Bot API latency, /status round trip
    "backtest": "bench.backtest",        # seven presets 2020–2026 and the 150-run sweep
    "vectorbt": "bench.vectorbt_compare",  # same workload in vectorbt, ratio
    "memory": "bench.memory",            # start-up time and resident memory
}


def main(names: list[str]) -> int:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Premia benchmarks")
    for col in ("benchmark", "figure", "value"):
        table.add_column(col)
    failed = 0
    for name in names or list(BENCHMARKS):
        started = time.perf_counter()
        try:
            figures = importlib.import_module(BENCHMARKS[name]).main()
        except Exception as exc:  # a benchmark's failure is reported, the others still run
            figures, failed = {"error": f"{type(exc).__name__}: {exc}"}, failed + 1
        figures["bench wall s"] = round(time.perf_counter() - started, 2)
        for key, value in figures.items():
            table.add_row(name, str(key), str(value))
    Console().print(table)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
