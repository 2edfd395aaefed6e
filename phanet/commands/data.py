"""`phanet data`: list datasets, check a dataset folder, prepare a crop cache, write subject folds.

    phanet data list
    phanet data check   --dataset kdef --root ~/data/KDEF_and_AKDEF
    phanet data prepare --dataset kdef --root ~/data/KDEF_and_AKDEF --input-size 112 --cache-dir ~/cache
    phanet data prepare --dataset kdef --root ~/data/KDEF_and_AKDEF --input-size 112 --cache-dir ~/cache --align
    phanet data folds   --dataset kdef --root ~/data/KDEF_and_AKDEF --folds 10 --out kdef_folds.json

Dataset options (the loader's keyword arguments, see docs/datasets.md) are given as
``--option key=value`` (values parsed as YAML: ``--option poses=7 --option illuminations=[7]``).
A folder that does not have the dataset's layout exits with status 1 and a message naming the path.
"""

from __future__ import annotations

import argparse
import inspect
import sys


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "data", help="check dataset folders, prepare crop caches, write folds",
        description="Work with datasets in their original distributed layouts (see docs/datasets.md).",
    )
    sub = parser.add_subparsers(dest="data_command", metavar="ACTION")

    listing = sub.add_parser("list", help="list the registered datasets")
    listing.set_defaults(func=run_list)

    check = sub.add_parser("check", help="count classes/poses/subjects and report every problem")
    _dataset_arguments(check)
    check.add_argument("--no-open", action="store_true", help="do not open each image (faster, finds less)")
    check.add_argument("--strict", action="store_true", help="exit with status 1 when any problem is found")
    check.add_argument("--workers", type=int, default=None, help="threads opening images (default: CPUs)")
    check.set_defaults(func=run_check)

    prepare = sub.add_parser(
        "prepare", help="decode, crop and resize every image once into a cache (--align: aligned face crops)",
        description="Decode every image once and store size x size crops in a cache that training reads "
                    "(data.cache_dir / --cache-dir). Without --align the sample's face box (or the whole "
                    "image) is resized to a square. With --align each face is aligned on the five-point "
                    "template of the face-crop contract, exactly as `phanet predict` crops faces: MTCNN "
                    "finds it (on the CPU) and its landmarks are mapped onto the template. Where detection "
                    "fails (profiles often do), the image is aligned with the median landmark positions of "
                    "the detected images of its pose bin; a pose bin without any detection gets a centred "
                    "square crop (never a stretched image). The counts per method are printed. Train on "
                    "it with --cache-dir and --set data.align_faces=true (padding 0.1).",
    )
    _dataset_arguments(prepare)
    # --input-size / --cache-dir as in `phanet train` (the old --size / --cache still work)
    prepare.add_argument("--input-size", "--size", dest="size", type=int, default=112,
                         help="side of the square crops: the model's input size (default 112)")
    prepare.add_argument("--cache-dir", "--cache", dest="cache", required=True, metavar="DIR",
                         help="folder for caches (one sub-folder per dataset/size/mode)")
    prepare.add_argument("--workers", type=int, default=None, help="decoding threads (default: CPUs)")
    prepare.add_argument("--align", action="store_true",
                         help="aligned face crops (MTCNN landmarks; fallback: pose-bin median landmarks, "
                              "then a centred square) instead of resizing the box or the whole image")
    prepare.add_argument("--padding", type=float, default=None,
                         help="with --align: margin around the template, a fraction of its side on each side "
                              "(default 0.1, what training with data.align_faces uses)")
    prepare.set_defaults(func=run_prepare)

    folds = sub.add_parser("folds", help="write a subject-independent k-fold file to reuse across runs")
    _dataset_arguments(folds)
    folds.add_argument("--folds", type=int, default=10, help="number of folds k (default 10)")
    folds.add_argument("--seed", type=int, default=0)
    folds.add_argument("--val-fraction", type=float, default=0.1, help="share of training subjects for val")
    folds.add_argument("--out", required=True, help="fold file to write (JSON)")
    folds.set_defaults(func=run_folds)

    parser.set_defaults(func=lambda args: parser.print_help() or 2)


def _dataset_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", required=True, help="dataset name (see `phanet data list`)")
    parser.add_argument("--root", required=True, help="the dataset folder as distributed")
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                        help="a dataset option, e.g. poses=7 (repeatable)")


def parse_options(pairs: list[str]) -> dict:
    from phanet.config import parse_key_values

    return parse_key_values(pairs, "--option", "KEY=VALUE")


def load(args):
    """The dataset index for ``--dataset/--root/--option``, with unknown options named clearly."""
    from phanet.data.registry import get_dataset_loader, list_datasets, load_dataset

    options = parse_options(args.option)
    if args.dataset in list_datasets():
        accepted = list(inspect.signature(get_dataset_loader(args.dataset)).parameters)[1:]
        unknown = sorted(set(options) - set(accepted))
        if unknown:
            raise ValueError(f"dataset {args.dataset!r} has no option {', '.join(unknown)}; "
                             f"its options: {', '.join(accepted) or '(none)'}")
    return load_dataset(args.dataset, args.root, **options)


def run_list(args) -> int:
    from phanet.data.registry import get_dataset_loader, list_datasets

    for name in list_datasets():
        doc = (sys.modules[get_dataset_loader(name).__module__].__doc__ or "").strip().splitlines()
        print(f"{name:10s} {doc[0] if doc else ''}")
    return 0


def run_check(args) -> int:
    from phanet.data.check import find_leaks, inspect_images, subject_stats, summarize, unusual_subjects

    index = load(args)
    counts = summarize(index)
    print(f"{index.name}: {len(index.samples)} samples, default protocol {index.default_protocol}")
    _print_counts("classes", counts["class"], index.label_space.expressions)
    _print_counts("poses", counts["pose"], [p.name for p in index.label_space.poses] + ["unknown"])
    if set(counts["split"]) != {"none"}:
        _print_counts("splits", counts["split"], ["train", "val", "test", "none"])
    if counts["subject"]:
        low, median, high = subject_stats(counts["subject"])
        print(f"subjects: {len(counts['subject'])} (images per subject: min {low}, median {median:g}, max {high})")
        usual, unusual = unusual_subjects(counts["subject"])
        for subject, n in unusual[:30]:
            print(f"  {subject}: {n} images (most subjects have {usual})")
        if len(unusual) > 30:
            print(f"  ... and {len(unusual) - 30} more subjects with another count")
    else:
        print("subjects: unknown")
    problems = list(index.problems)
    if not args.no_open:
        problems += inspect_images(index, workers=args.workers, progress=sys.stderr.isatty())
    leaks = find_leaks(index, content=not args.no_open)
    problems += leaks
    print(f"problems: {len(problems)}")
    for line in problems:
        print(f"  {line}")
    if leaks:  # duplicates and leaks make a test score lie: always a failure
        print(f"phanet data: error: {len(leaks)} duplicate(s) or train/test leak(s) in {args.root}",
              file=sys.stderr)
        return 1
    return 1 if args.strict and problems else 0


def _print_counts(title: str, counts, order) -> None:
    names = [name for name in order if counts.get(name)] + sorted(set(counts) - set(order))
    print(f"{title} ({len(names)}):")
    width = max((len(str(n)) for n in names), default=0)
    for name in names:
        print(f"  {str(name):{width}s} {counts[name]:7d}")
    missing = [name for name in order if not counts.get(name) and name not in ("unknown", "none")]
    if missing:
        print(f"  no samples: {', '.join(map(str, missing))}")


def run_prepare(args) -> int:
    import time

    from phanet.crop import DEFAULT_PADDING
    from phanet.data.cache import alignment_counts, build_cache, describe_counts

    if args.padding is not None and not args.align:
        raise ValueError("--padding applies to aligned crops only; add --align")
    padding = DEFAULT_PADDING if args.padding is None else args.padding
    index = load(args)
    start = time.perf_counter()
    path = build_cache(index, args.size, args.cache, workers=args.workers, progress=sys.stderr.isatty(),
                       align=args.align, padding=padding)
    kind = f"aligned face crops (padding {padding:g})" if args.align else "crops"
    if args.align:
        counts = alignment_counts(path) or {}
        unreadable = len(index.samples) - sum(counts.values())
        print(describe_counts(counts, unreadable))
    print(f"cache of {len(index.samples)} {index.name} {kind} ({args.size}x{args.size}) at {path} "
          f"in {time.perf_counter() - start:.1f}s")
    return 0


def run_folds(args) -> int:
    from pathlib import Path

    from phanet.data.protocols import split_for_fold

    index = load(args)
    out = Path(args.out)
    if out.exists():
        raise ValueError(f"{out} exists; fold files are never overwritten (delete it to make new folds)")
    for fold in range(args.folds):
        split = split_for_fold(index, fold, args.folds, args.seed, args.val_fraction, out)
        subjects = {part: len({index.samples[i].subject for i in split[part]}) for part in split}
        print(f"fold {fold}: " + ", ".join(f"{p} {len(split[p])} images / {subjects[p]} subjects" for p in split))
    print(f"wrote {out}")
    return 0
