"""Training throughput alone vs next to one busy process on the same cores (issue 12, shared CPUs).

Run by hand:  python benchmarks/contention.py [--model phanet_r18] [--size 64] [--batch 32] [--rounds 3]
              [--json results/contention.json]

For each thread setting it times real training steps (the engine's ``train_one_epoch`` via
``train_speed.StepTimer``: forward, PhaNet loss with learned task weights, backward, AdamW) in a fresh
subprocess per measurement (the OpenMP wait policy is read when OpenMP loads), once with the machine
as it is ("alone") and once with one extra busy process (``yes > /dev/null``, started by this script
and stopped after the measurement) competing for the same cores ("loaded"). Settings and rounds are
interleaved; the best round of each is kept. Settings:

* ``CLI default``: what ``phanet train/demo`` does with no thread options -- the child imports
  ``phanet.cli`` before torch (which sets ``OMP_WAIT_POLICY=PASSIVE`` unless the environment has one)
  and keeps torch's thread count (one per core);
* ``spinning (ACTIVE)``: the same with ``OMP_WAIT_POLICY=ACTIVE`` (OpenMP's spin-waiting);
* ``--threads 1``: the CLI default with ``torch.set_num_threads(1)``.

The ratio loaded/alone is what to read; the goal is that the CLI default keeps at least 40% of its
alone throughput. The load average and the busiest other processes are printed, because "alone" means
"without our extra busy process", not "on an idle machine".
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

# label -> (extra environment, torch threads or None for torch's default)
SETTINGS = {
    "CLI default (PASSIVE, default threads)": ({}, None),
    "spinning (OMP_WAIT_POLICY=ACTIVE)": ({"OMP_WAIT_POLICY": "ACTIVE"}, None),
    "--threads 1 (PASSIVE)": ({}, 1),
}
GOAL = 0.40


def child_code(model: str, size: int, batch: int, steps: int, threads: int | None) -> str:
    """Python run in a fresh process: prints images/s of the best of two timed runs, and torch's threads."""
    set_threads = f"torch.set_num_threads({threads}); " if threads else ""
    return (f"import sys; sys.path.insert(0, {str(HERE)!r}); import phanet.cli; import os, torch; {set_threads}"
            f"from train_speed import StepTimer; t = StepTimer({model!r}, {size}, {batch}); t.run(1); "
            f"best = min(t.run({steps})[0] for _ in range(2)); "
            f"print({batch * steps} / best, torch.get_num_threads(), os.environ.get('OMP_WAIT_POLICY'))")


def measure(model: str, size: int, batch: int, steps: int, env_extra: dict, threads: int | None,
            busy: int = 0) -> dict:
    """Images/s of one fresh training process, with ``busy`` extra spinning processes alongside it."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS")} | env_extra
    hogs = [subprocess.Popen(["yes"], stdout=subprocess.DEVNULL) for _ in range(busy)]
    try:
        if hogs:
            time.sleep(0.5)  # let the busy process reach its core
        done = subprocess.run([sys.executable, "-c", child_code(model, size, batch, steps, threads)], env=env,
                              capture_output=True, text=True, check=True)
    finally:
        for hog in hogs:
            hog.terminate()
            hog.wait()
    rate, torch_threads, policy = done.stdout.split()[-3:]
    return {"images_per_s": float(rate), "torch_threads": int(torch_threads), "policy": policy,
            "load_average": os.getloadavg()[0]}


def busiest_processes(count: int = 6) -> list[str]:
    """The processes using the most CPU over the last half second (``top``), to say what else was running."""
    try:
        out = subprocess.run(["top", "-b", "-n", "2", "-d", "0.5", "-w", "200"], capture_output=True, text=True,
                             timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return []
    rows = out.rsplit("\ntop - ", 1)[-1].splitlines()  # the second sample: CPU use over the last interval
    header = next((i for i, line in enumerate(rows) if line.split()[:1] == ["PID"]), None)
    if header is None:
        return []
    busy = []
    for line in rows[header + 1:]:
        fields = line.split()
        if len(fields) >= 12 and float(fields[8].replace(",", ".")) >= 5:
            busy.append(f"{fields[11]} {fields[8]}%")
    return busy[:count] or ["none above 5% CPU"]


def run(model: str = "phanet_r18", size: int = 64, batch: int = 32, steps: int = 4, rounds: int = 3,
        settings: dict = SETTINGS) -> dict:
    runs: dict[str, dict[str, list[dict]]] = {label: {"alone": [], "loaded": []} for label in settings}
    context = [f"before: load average {os.getloadavg()[0]:.2f}; busiest: {'; '.join(busiest_processes())}"]
    for _ in range(rounds):
        for label, (env_extra, threads) in settings.items():
            for mode, busy in (("alone", 0), ("loaded", 1)):
                runs[label][mode].append(measure(model, size, batch, steps, env_extra, threads, busy))
        context.append(f"after round: load average {os.getloadavg()[0]:.2f}; "
                       f"busiest: {'; '.join(busiest_processes())}")
    summary = {}
    for label, modes in runs.items():
        alone = max(r["images_per_s"] for r in modes["alone"])
        loaded = max(r["images_per_s"] for r in modes["loaded"])
        summary[label] = {"alone": alone, "loaded": loaded, "ratio": loaded / alone,
                          "torch_threads": modes["alone"][0]["torch_threads"], "policy": modes["alone"][0]["policy"]}
    return {"model": model, "size": size, "batch": batch, "steps": steps, "rounds": rounds, "cpus": os.cpu_count(),
            "summary": summary, "runs": runs, "context": context}


def report(result: dict) -> str:
    lines = [f"{result['model']} training, {result['size']}px, batch {result['batch']}, {result['steps']} steps x 2 "
             f"per measurement (best kept), fresh process per measurement, {result['rounds']} interleaved rounds, "
             f"{result['cpus']} CPUs; loaded = one extra `yes > /dev/null` process on the same cores", "",
             "| setting | torch threads | wait policy | alone img/s | loaded img/s | loaded / alone |",
             "|---|---|---|---|---|---|"]
    for label, s in result["summary"].items():
        lines.append(f"| {label} | {s['torch_threads']} | {s['policy']} | {s['alone']:.1f} | {s['loaded']:.1f} | "
                     f"{s['ratio']:.2f} |")
    default = next(iter(result["summary"].values()))
    verdict = "meets" if default["ratio"] >= GOAL else "misses"
    lines += ["", f"CLI default keeps {100 * default['ratio']:.0f}% of its alone throughput under load "
              f"({verdict} the {100 * GOAL:.0f}% goal)", "", "machine state:"] + [f"  {c}" for c in result["context"]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="phanet_r18")
    parser.add_argument("--size", type=int, default=64, help="image side (default 64, the demo's)")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=4, help="training steps per timed run")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (the best is kept)")
    parser.add_argument("--json", metavar="FILE", help="also write every measurement as JSON")
    args = parser.parse_args(argv)
    result = run(args.model, args.size, args.batch, args.steps, args.rounds)
    print(report(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
