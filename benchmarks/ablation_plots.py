"""Plots of an ablation result (``benchmarks/ablation.py --out FILE``): accuracy vs yaw, and PhaNet's beta per pose.

    python benchmarks/ablation_plots.py results.json --out-dir benchmarks/results/

Writes, per preset, ``ablation_<preset>_accuracy_vs_yaw.png`` (one line per model, mean over runs with
± std error bars; presets with pitch are averaged over pitch at each yaw) and
``ablation_<preset>_scale_weights.png`` (PhaNet's mean beta per scale at each test pose).
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def accuracy_by_yaw(entry: dict, runs: list[dict]) -> tuple[list[float], list[float], list[float]]:
    """Yaws, and mean/std over runs of the accuracy at each yaw (poses at one yaw averaged with weights)."""
    yaws = sorted({yaw for yaw, _ in entry["pose_angles"]})
    means, stds = [], []
    for yaw in yaws:
        poses = [p for p, (y, _) in zip(entry["poses"], entry["pose_angles"]) if y == yaw]
        per_run = [statistics.fmean(r["per_pose_accuracy"][p] for p in poses if p in r["per_pose_accuracy"])
                   for r in runs]
        means.append(100 * statistics.fmean(per_run))
        stds.append(100 * statistics.pstdev(per_run) if len(per_run) > 1 else 0.0)
    return yaws, means, stds


def plot_accuracy_vs_yaw(preset: str, entry: dict, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for model, runs in entry["runs"].items():
        if runs:
            yaws, means, stds = accuracy_by_yaw(entry, runs)
            ax.errorbar(yaws, means, yerr=stds, marker="o", capsize=3, label=f"{model} (n={len(runs)})")
    ax.set_xlabel("yaw (degrees)")
    ax.set_ylabel("expression accuracy on unseen subjects (%)")
    ax.set_title(f"synthetic {preset}: accuracy vs head pose (mean ± std over runs)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_scale_weights(preset: str, entry: dict, path: Path) -> bool:
    """Stacked bars of PhaNet's mean beta per scale at each pose; False when the result has no PhaNet."""
    model = next((m for m in entry["runs"] if m.startswith("phanet")), None)
    runs = [r for r in entry["runs"].get(model, []) if r.get("mean_scale_weights_per_pose")]
    if not runs:
        return False
    scales = len(runs[0]["mean_scale_weights"])
    poses = entry["poses"]
    fig, ax = plt.subplots(figsize=(max(6.4, 0.35 * len(poses)), 4.0))
    bottom = [0.0] * len(poses)
    for s in range(scales):
        values = [statistics.fmean(r["mean_scale_weights_per_pose"][p][s] for r in runs) for p in poses]
        ax.bar(range(len(poses)), values, bottom=bottom, label=f"scale {s + 1}/{scales}")
        bottom = [b + v for b, v in zip(bottom, values)]
    ax.set_xticks(range(len(poses)), poses, rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("mean β")
    ax.set_title(f"{model} on synthetic {preset}: scale weights per test pose (scale 1 = shallowest)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def write_plots(results: dict, out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for preset, entry in results["presets"].items():
        path = out_dir / f"ablation_{preset}_accuracy_vs_yaw.png"
        plot_accuracy_vs_yaw(preset, entry, path)
        written.append(path)
        path = out_dir / f"ablation_{preset}_scale_weights.png"
        if plot_scale_weights(preset, entry, path):
            written.append(path)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", type=Path, nargs="+", help="ablation --out JSON file(s); several are merged")
    parser.add_argument("--out-dir", type=Path, default=Path("."))
    args = parser.parse_args()
    from ablation import merge_results

    results = merge_results([json.loads(p.read_text()) for p in args.results])
    for path in write_plots(results, args.out_dir):
        print(path)


if __name__ == "__main__":
    main()
