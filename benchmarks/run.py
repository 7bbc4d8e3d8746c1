"""`make bench`: run every benchmark, then gather their markdown into bench/results.md.

One failing benchmark is reported in results.md and does not stop the others.
`python -m benchmarks.run separation pipeline` runs a subset.
"""
from __future__ import annotations

import importlib
import shutil
import sys
import time
import traceback

from .common import OUT, environment

BENCHES = ["pipeline", "separation", "timbre", "melody", "coverid", "genre", "batch", "analysis", "memory", "arrange",
           "judge"]


def main(names: list[str]) -> int:
    names = names or BENCHES
    failures = []
    for name in names:
        t0 = time.perf_counter()
        print(f"[bench] {name} ...", flush=True)
        sys.argv = [f"benchmarks.bench_{name}"]  # benchmarks with their own argparse see no stray args
        if name == "coverid" and (OUT / "cover_pairs.json").is_file():
            sys.argv += ["--pairs", str(OUT / "cover_pairs.json")]  # covers made by the pipeline bench
        if name == "arrange":  # kept for the judge bench (bench_judge.KEPT), none left from an older run
            shutil.rmtree(OUT / "covers" / "arranged", ignore_errors=True)
            sys.argv += ["--keep-audio", str(OUT / "covers" / "arranged")]
        try:
            importlib.import_module(f"benchmarks.bench_{name}").main()
        except ModuleNotFoundError as err:
            if err.name != f"benchmarks.bench_{name}":
                raise
            print(f"[bench] {name}: no benchmark module", flush=True)
            continue
        except Exception:  # a benchmark's bug must not hide the others' numbers
            failures.append((name, traceback.format_exc()))
            print(f"[bench] {name} FAILED", flush=True)
        print(f"[bench] {name} took {time.perf_counter() - t0:.0f} s", flush=True)
    env = environment()
    parts = [f"# covergen benchmark results\n\ncommit {env['commit']}, {env['date']}, {env['cpus']} CPUs, "
             f"torch threads {env['torch_threads']}, device {env['device']}\n"]
    for name in BENCHES:
        md = OUT / f"{name}.md"
        if md.exists():
            parts.append(md.read_text())
    for name, tb in failures:
        parts.append(f"## {name}: FAILED\n\n```\n{tb}\n```\n")
    (OUT / "results.md").write_text("\n".join(parts))
    print(f"[bench] wrote {OUT / 'results.md'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
