"""Run every benchmark and write bench/RESULTS.md (machine, versions, date, each figure
against its target). `--quick` runs small sizes for CI and prints instead of writing.
`--backend ray` runs the scale figures (parallel.py) on the Ray backend instead and writes
bench/RESULTS-ray.md (scripts/bench-ray.sh runs it on a cluster of two local nodes)."""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from common import Figure, env_with_path, fmt

HERE = Path(__file__).resolve().parent
SCRIPTS = ["startup.py", "rpc.py", "overhead.py", "parallel.py", "jobs.py", "memory.py", "streaming.py", "diffs.py",
           "repomap.py", "history.py", "web.py", "engines.py", "watch.py"]
# --quick runs two lanes at once to stay near a minute or two in CI (each daemon pays ~4 s of litellm
# import); its figures are then only a smoke test. The full run is strictly one script at a time.
QUICK_LANES = [["overhead.py", "startup.py", "parallel.py", "repomap.py", "engines.py", "jobs.py"],
               ["memory.py", "rpc.py", "streaming.py", "diffs.py", "history.py", "web.py", "watch.py"]]


def machine() -> dict[str, str]:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kb = next(int(x.split()[1]) for x in Path("/proc/meminfo").read_text().splitlines()
                  if x.startswith("MemTotal:"))

    def pkg(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "not installed"

    rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain", "--", "daemon"], cwd=HERE.parent,
                           capture_output=True, text=True).stdout.strip()
    git = subprocess.run(["git", "--version"], capture_output=True, text=True).stdout.strip()
    return {
        "cores": str(os.cpu_count()), "RAM": f"{mem_kb / 1024 / 1024:.1f} GiB", "CPU": cpu,
        "OS": f"{platform.system()} {platform.release()}", "python": platform.python_version(),
        "litellm": pkg("litellm"), "pydantic": pkg("pydantic"), "git": git,
        "pasd rev": rev.stdout.strip() + (" (daemon/ modified)" if dirty else ""),
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
    }


def table(figures: list[Figure]) -> list[str]:
    out = ["| figure | value | target | ratio | |", "|---|---:|---|---:|---|"]
    for f in figures:
        value = "not available" if f.value is None else f"{fmt(f.value)} {f.unit}".strip()
        name = f.name + (f" <br><sub>{f.note}</sub>" if f.note else "")
        out.append(f"| {name} | {value} | {f.target_text()} | {f.ratio()} | {f.verdict} |")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="small sizes (< 60 s), print only")
    ap.add_argument("--out", type=Path, help="where to write the report (default: bench/RESULTS.md; "
                                            "with --quick nothing is written unless given)")
    ap.add_argument("--backend", choices=["local", "ray"], default="local",
                    help="ray: only the parallel figures, on the Ray backend (see parallel.py --help)")
    args = ap.parse_args()
    scripts, extra = (["parallel.py"], ["--backend", "ray"]) if args.backend == "ray" else (SCRIPTS, [])
    started = time.monotonic()
    sections: list[tuple[str, list[Figure], float]] = []
    failed = []
    with tempfile.TemporaryDirectory() as tmp:

        def run(script: str) -> tuple[str, dict[str, Any] | None, float, str]:
            out = Path(tmp) / (script + ".json")
            argv = [sys.executable, str(HERE / script), "--json", str(out), *extra]
            argv += ["--quick"] if args.quick else []
            t0 = time.monotonic()
            if args.quick:
                proc = subprocess.run(argv, env=env_with_path(), capture_output=True, text=True)
                printed = proc.stdout + proc.stderr
            else:
                proc = subprocess.run(argv, env=env_with_path())
                printed = ""
            data = json.loads(out.read_text()) if proc.returncode == 0 and out.exists() else None
            return script, data, time.monotonic() - t0, printed

        if args.quick and args.backend == "local":
            with concurrent.futures.ThreadPoolExecutor(len(QUICK_LANES)) as ex:
                lanes = ex.map(lambda lane: [run(s) for s in lane], QUICK_LANES)
                results = {r[0]: r for lane in lanes for r in lane}
        else:
            results = {s: run(s) for s in scripts}
        for script in scripts:
            _, data, secs, printed = results[script]
            print(printed, end="", flush=True)
            if data is None:
                failed.append(script)
                continue
            figs = [Figure(**{**f, "target": tuple(f["target"]) if f["target"] else None})
                    for f in data["figures"]]
            sections.append((str(data["title"]), figs, secs))
    total = time.monotonic() - started

    info = machine()
    info["load average (1, 5, 15 min) at the end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    if args.quick:
        info["note"] = "quick: small sizes, two scripts at a time; a smoke test, not a measurement"
    flags = (" --backend ray" if args.backend == "ray" else "") + (" --quick" if args.quick else "")
    lines = ["# pasd benchmarks" + (" on the Ray backend" if args.backend == "ray" else "")
             + (" (quick sizes)" if args.quick else ""), "",
             f"Produced by `python bench/run_all.py{flags}` in {total:.0f} s.",
             "", "| | |", "|---|---|", *[f"| {k} | {v} |" for k, v in info.items()], ""]
    verdicts = [f.verdict for _, figs, _ in sections for f in figs if f.target]
    met = f"{verdicts.count('PASS')} of {len(verdicts)} targets met" if verdicts else "no targets: context figures"
    lines += [f"**{met}.**", ""]
    for title, figs, secs in sections:
        lines += [f"## {title}", "", f"({secs:.0f} s)", "", *table(figs), ""]
    if failed:
        lines += ["## Scripts that failed", "", *[f"- {s}" for s in failed], ""]
    text = "\n".join(lines)
    default = HERE / ("RESULTS-ray.md" if args.backend == "ray" else "RESULTS.md")
    dest = args.out or (None if args.quick else default)
    if dest is not None:
        dest.write_text(text)
        print(f"\nwrote {dest}")
    print(f"\n{met}; run_all took {total:.1f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
