"""Built-in synthetic multi-view faces: 3D heads with FACS action units, rendered on CPU.

With no dataset on disk, the whole pipeline still runs and is tested on these faces, and they are
the default data of ``phanet demo``. Everything is procedural (numpy only, no assets) and
deterministic from ``(seed, subject, expression, pose, variant)``:

- :mod:`.identity` draws a subject's head shape, proportions, skin, eye and hair colour, hair style;
- :mod:`.expressions` defines 18 action units and the seven basic expressions as EMFACS prototypes
  with random intensities;
- :mod:`.geometry` builds the 3D head (a deformable parametric surface with nose, lips, brow ridge,
  eye sockets, ears, hair volume, a real mouth opening) and moves it with the AUs;
- :mod:`.render` projects it with a perspective camera at a yaw/pitch, removes hidden surfaces with
  a z-buffer (:mod:`.raster`), paints eyes, brows, lips, teeth, wrinkles and hair per pixel
  (:mod:`.paint`) and shades it (Lambert + Blinn-Phong) -- about 110 images/s at 112 px on one core
  (``benchmarks/synth_speed.py``);
- :mod:`.dataset` indexes samples (pose presets ``kdef5``, ``bu3dfe35``, ``multipie7``,
  ``multipie13``), registers the dataset ``synthetic`` and gives a torch Dataset;
- :mod:`.writer` writes images + ``labels.csv`` in the generic CSV layout (``phanet synth``).

Pose convention: positive yaw turns the head to the subject's own left (the nose points to the
image's right); positive pitch tilts the head back. A horizontal flip maps yaw to -yaw.
"""

from phanet.data.synthetic.dataset import (
    POSE_PRESETS,
    SyntheticFaces,
    SyntheticImage,
    load_synthetic,
    parse_poses,
    pose_bins,
    synthetic_index,
    synthetic_label_space,
)
from phanet.data.synthetic.expressions import ACTION_UNITS, PROTOTYPES, prototype_aus, sample_aus
from phanet.data.synthetic.identity import Identity, sample_identity
from phanet.data.synthetic.render import RANDOMIZATIONS, Scene, View, render_face, render_scene
from phanet.data.synthetic.writer import contact_sheet, write_synthetic_dataset

__all__ = [
    "ACTION_UNITS",
    "POSE_PRESETS",
    "PROTOTYPES",
    "Identity",
    "Scene",
    "SyntheticFaces",
    "SyntheticImage",
    "View",
    "contact_sheet",
    "load_synthetic",
    "parse_poses",
    "pose_bins",
    "prototype_aus",
    "RANDOMIZATIONS",
    "render_face",
    "render_scene",
    "sample_aus",
    "sample_identity",
    "synthetic_index",
    "synthetic_label_space",
    "write_synthetic_dataset",
]
