"""Write synthetic faces in KDEF's distributed layout, as portraits, to test the KDEF path end to end.

KDEF (Lundqvist, Flykt & Öhman, 1998) is licensed, so this project cannot test on it. This script
renders a stand-in with the same folder and file names (``KDEF/AF01/AF01AFHL.JPG``: session, gender,
identity, expression, angle), 70 people photographed in two sessions, and KDEF's portrait aspect
(562 x 762, here scaled by ``--width``): the rendered face sits in a taller canvas whose extra rows
continue the backdrop, so a loader that squashes the whole portrait to a square distorts the face as
it would on real KDEF pictures.

Identities are drawn from generator ids that no built-in training default uses (``--first-subject``,
default 5000, and seed 11), so a model trained by ``phanet demo`` or ``phanet synth`` never saw them.

    python benchmarks/render_kdef_layout.py --out /tmp/kdef_synth --width 200
    phanet train --dataset kdef --root /tmp/kdef_synth --fold 0 --epochs 8
"""

from __future__ import annotations

import argparse
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

KDEF_ASPECT = 762 / 562  # height / width of a KDEF portrait
# KDEF codes -> (index into phanet.data.SEVEN_EXPRESSIONS order by name, yaw).
EXPRESSION_CODES = {"AF": "fear", "AN": "anger", "DI": "disgust", "HA": "happy", "NE": "neutral", "SA": "sad",
                    "SU": "surprise"}
ANGLE_CODES = {"FL": -90.0, "HL": -45.0, "S": 0.0, "HR": 45.0, "FR": 90.0}


def portrait(face: np.ndarray, aspect: float = KDEF_ASPECT) -> np.ndarray:
    """A square render ``[W, W, 3]`` in a ``[W*aspect, W, 3]`` canvas, the face a little above centre."""
    width = face.shape[1]
    extra = int(round(width * aspect)) - face.shape[0]
    top = int(round(extra * 0.4))
    # Above the head: the backdrop's colour at the top corners (replicating the top row would smear
    # the hair); below: the bottom row continued, as neck and backdrop go on below a portrait's face.
    corners = np.concatenate([face[:4, :4].reshape(-1, 3), face[:4, -4:].reshape(-1, 3)]).mean(0)
    above = np.broadcast_to(corners.astype(np.uint8), (top, width, 3))
    below = np.repeat(face[-1:], extra - top, axis=0)
    return np.concatenate([above, face, below], axis=0)


def _render(task: tuple) -> None:
    from phanet.data import SEVEN_EXPRESSIONS
    from phanet.synth.render import render_face

    path, seed, subject, expression, yaw, width, variant = task
    face = render_face(seed, subject, SEVEN_EXPRESSIONS.index(expression), yaw, 0.0, width, variant=variant)
    Image.fromarray(portrait(face)).save(path, quality=92)


def tasks(out: Path, people: int, first_subject: int, seed: int, width: int) -> list[tuple]:
    """One task per picture: 2 sessions x ``people`` (half F, half M) x 7 expressions x 5 angles."""
    todo = []
    for person in range(people):
        gender, number = ("F", person // 2 + 1) if person % 2 == 0 else ("M", person // 2 + 1)
        for session_index, session in enumerate("AB"):
            name = f"{session}{gender}{number:02d}"
            folder = out / "KDEF" / name
            folder.mkdir(parents=True, exist_ok=True)
            for code, expression in EXPRESSION_CODES.items():
                for angle, yaw in ANGLE_CODES.items():
                    todo.append((folder / f"{name}{code}{angle}.JPG", seed, first_subject + person, expression,
                                 yaw, width, session_index))
    return todo


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, type=Path, help="root folder (KDEF/ is written inside it)")
    parser.add_argument("--people", type=int, default=70, help="identities, each in sessions A and B (default 70)")
    parser.add_argument("--width", type=int, default=200, help="portrait width in pixels (default 200; KDEF: 562)")
    parser.add_argument("--first-subject", type=int, default=5000, help="first generator identity id")
    parser.add_argument("--seed", type=int, default=11, help="generator seed")
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    if not 1 <= args.people <= 70:
        parser.error("--people must be in 1..70 (KDEF numbers identities 01-35 per gender)")
    todo = tasks(args.out, args.people, args.first_subject, args.seed, args.width)
    if args.workers > 1:
        with ProcessPoolExecutor(args.workers) as pool:
            list(tqdm(pool.map(_render, todo, chunksize=16), total=len(todo), desc="render"))
    else:
        for task in tqdm(todo, desc="render"):
            _render(task)
    print(f"wrote {len(todo)} pictures in KDEF's layout under {args.out / 'KDEF'}")


if __name__ == "__main__":
    main()
