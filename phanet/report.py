"""Run reports: confusion matrix, accuracy-vs-pose plot, attention overlays, and printed tables.

Everything lands in the run folder next to ``metrics.json``, so a run can be read without Python.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from phanet.data.base import FaceDataset


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only; never needs a display
    import matplotlib.pyplot as plt

    return plt


def plot_confusion_matrix(matrix: list[list[int]], class_names: list[str], path: Path, title: str) -> None:
    """Row-normalised confusion matrix (rows: true class) with counts in each cell."""
    plt = _pyplot()
    counts = np.asarray(matrix, dtype=float)
    rates = counts / np.maximum(counts.sum(1, keepdims=True), 1)
    size = 1.0 + 0.6 * len(class_names)
    fig, ax = plt.subplots(figsize=(size + 1.5, size))
    image = ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(class_names)), class_names, rotation=45, ha="right")
    ax.set_yticks(range(len(class_names)), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(len(class_names)):
        for j in range(len(class_names)):
            ax.text(j, i, f"{rates[i, j]:.2f}\n({int(counts[i, j])})", ha="center", va="center", fontsize=7,
                    color="white" if rates[i, j] > 0.5 else "black")
    fig.colorbar(image, ax=ax, fraction=0.046)
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_accuracy_vs_pose(curves: dict[str, dict[str, float | None]], path: Path, title: str) -> None:
    """One line per model: expression accuracy in each pose bin."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(5.0, 0.7 * len(next(iter(curves.values()), {})) + 2), 3.5))
    for label, per_pose in curves.items():
        names = list(per_pose)
        values = [np.nan if v is None else v for v in per_pose.values()]
        ax.plot(range(len(names)), values, marker="o", label=label)
        ax.set_xticks(range(len(names)), names, rotation=30, ha="right")
    ax.set_ylim(0, 1)
    ax.set_ylabel("expression accuracy")
    ax.set_xlabel("pose")
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


@torch.no_grad()
def attention_grid(model, dataset: FaceDataset, indices: list[int], device, path: Path) -> bool:
    """Rows: sample images (one per pose where possible); columns: the image, then each scale's
    attention overlay with its scale weight. Returns False for models without attention maps."""
    from phanet.data.transforms import denormalize
    from phanet.visualize import overlay_attention

    items = [dataset[i] for i in indices]
    items = [it for it in items if it is not None]
    if not items:
        return False
    images = torch.stack([it["image"] for it in items]).to(device)
    output = model(images, return_attention=True)
    if output.attention_maps is None:
        return False
    plt = _pyplot()
    pictures = (denormalize(images, model.mean, model.std).permute(0, 2, 3, 1).cpu().numpy() * 255).astype(np.uint8)
    probs = output.expression_logits.softmax(-1).cpu()
    names = dataset.label_space.expressions
    poses = dataset.label_space.poses
    scales = len(output.attention_maps)
    fig, axes = plt.subplots(len(items), scales + 1, figsize=(1.8 * (scales + 1), 1.9 * len(items)), squeeze=False)
    for row, item in enumerate(items):
        true = names[int(item["expression"])]
        pose = poses[int(item["pose"])].name if int(item["pose"]) >= 0 and poses else "?"
        axes[row, 0].imshow(pictures[row])
        axes[row, 0].set_title(f"{true} @ {pose}\npred {names[int(probs[row].argmax())]}", fontsize=7)
        for s, maps in enumerate(output.attention_maps):
            overlay = overlay_attention(pictures[row], maps[row, 0].float().cpu().numpy())
            axes[row, s + 1].imshow(overlay)
            weight = "" if output.scale_weights is None else f" β={float(output.scale_weights[row, s]):.2f}"
            axes[row, s + 1].set_title(f"scale {s}{weight}", fontsize=7)
    for ax in axes.flat:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def one_index_per_pose(pose_labels: np.ndarray, dataset_indices: np.ndarray, limit: int = 8) -> list[int]:
    """Dataset indices of the first evaluated sample of each pose bin (unknown pose last), at most ``limit``."""
    chosen = []
    for pose in sorted(set(pose_labels.tolist()), key=lambda p: (p < 0, p)):
        chosen.append(int(dataset_indices[np.flatnonzero(pose_labels == pose)[0]]))
    return chosen[:limit]


def write_run_report(out_dir: Path, results: dict, model, dataset: FaceDataset, arrays: dict, device) -> None:
    """Confusion matrix, accuracy-vs-pose and attention-overlay PNGs for one evaluated run."""
    out_dir = Path(out_dir)
    title = f"{results.get('model', '')} on {results.get('dataset', '')} ({results.get('evaluated_on', 'test')})"
    if results.get("confusion_matrix"):
        plot_confusion_matrix(results["confusion_matrix"], results["class_names"], out_dir / "confusion_matrix.png",
                              title)
    if results.get("per_pose_accuracy"):
        plot_accuracy_vs_pose({results.get("model", "model"): results["per_pose_accuracy"]},
                              out_dir / "accuracy_vs_pose.png", title)
    if "index" in arrays:
        indices = one_index_per_pose(arrays["pose"], arrays["index"])
        attention_grid(model, dataset, indices, device, out_dir / "attention.png")


def format_table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    line = lambda cells: "  ".join(str(c).rjust(w) if i else str(c).ljust(w)  # noqa: E731
                                   for i, (c, w) in enumerate(zip(cells, widths)))
    return "\n".join([line(header), "  ".join("-" * w for w in widths)] + [line(r) for r in rows])


def pct(value: float | None) -> str:
    return "—" if value is None or (isinstance(value, float) and np.isnan(value)) else f"{100 * value:.1f}"


def per_pose_table(results_by_model: dict[str, dict]) -> str:
    """Accuracy (%) per pose bin, one column per model, plus overall and macro-F1 rows."""
    models = list(results_by_model)
    poses = list(next(iter(results_by_model.values())).get("per_pose_accuracy", {}))
    rows = [[pose] + [pct(results_by_model[m]["per_pose_accuracy"].get(pose)) for m in models] for pose in poses]
    rows.append(["overall"] + [pct(results_by_model[m]["accuracy"]) for m in models])
    rows.append(["macro-F1"] + [pct(results_by_model[m].get("macro_f1")) for m in models])
    return format_table(rows, ["pose"] + models)


def summary_table(results: dict) -> str:
    """The end-of-run table: overall, per expression and per pose."""
    lines = [f"{results.get('model', 'model')} on {results.get('dataset', '')}: accuracy {pct(results['accuracy'])}%, "
             f"macro-F1 {pct(results.get('macro_f1'))}% over {results['num_samples']} images "
             f"({results.get('evaluated_on', 'test')})"]
    if results.get("skipped"):
        lines.append(f"skipped {results['skipped']} unreadable images")
    expr = results.get("per_expression_accuracy", {})
    lines.append(format_table([[k, pct(v)] for k, v in expr.items()], ["expression", "acc %"]))
    if results.get("per_pose_accuracy"):
        lines.append(format_table([[k, pct(v), str(results["per_pose_count"][k])]
                                   for k, v in results["per_pose_accuracy"].items()], ["pose", "acc %", "n"]))
    return "\n\n".join(lines)
