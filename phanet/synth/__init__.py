"""The synthetic face renderer: 3D heads with FACS action units, rendered on CPU.

With no dataset on disk, the whole pipeline still runs and is tested on these faces, and they are
the default data of ``phanet demo``. Everything is procedural (numpy only, no assets) and
deterministic from ``(seed, subject, expression, pose, variant)``. This package renders images and
knows nothing of datasets (it imports only :mod:`phanet.crop`); the dataset of these faces is
:mod:`phanet.data.datasets.synthetic` and the folder writer :mod:`phanet.data.synthetic_writer`:

- :mod:`.identity` draws a subject's head shape, proportions, skin, eye and hair colour, hair style;
- :mod:`.expressions` defines 18 action units and the seven basic expressions as EMFACS prototypes
  with random intensities;
- :mod:`.geometry` builds the 3D head (a deformable parametric surface with nose, lips, brow ridge,
  eye sockets, ears, hair volume, a real mouth opening) and moves it with the AUs;
- :mod:`.render` projects it with a perspective camera at a yaw/pitch, removes hidden surfaces with
  a z-buffer (:mod:`.raster`), paints eyes, brows, lips, teeth, wrinkles and hair per pixel
  (:mod:`.paint`; the optional skin texture, make-up, socket shading and glasses in :mod:`.details`;
  the resting face, weak action units under every expression of a subject, drawn by
  :func:`.identity.sample_identity` and added to the expression by :func:`.render.render_scene`)
  and shades it (Lambert + Blinn-Phong) -- about 110 images/s at 112 px on one core
  (``benchmarks/synth_speed.py``);
- :mod:`.maths` holds the smooth functions the geometry and the painter share;
- :class:`.render.RenderSettings` says how a set is rendered (size, jitter, crop, randomisations).

Pose convention: positive yaw turns the head to the subject's own left (the nose points to the
image's right); positive pitch tilts the head back. A horizontal flip maps yaw to -yaw.
"""

from phanet.synth.expressions import ACTION_UNITS, EXPRESSIONS, PROTOTYPES, prototype_aus, sample_aus
from phanet.synth.identity import Identity, sample_identity
from phanet.synth.render import (
    DEFAULT_RANDOMIZATIONS,
    RANDOMIZATIONS,
    RenderSettings,
    Scene,
    View,
    check_randomize,
    render_capture,
    render_face,
    render_scene,
)

__all__ = [
    "ACTION_UNITS",
    "EXPRESSIONS",
    "PROTOTYPES",
    "DEFAULT_RANDOMIZATIONS",
    "RANDOMIZATIONS",
    "Identity",
    "RenderSettings",
    "Scene",
    "View",
    "check_randomize",
    "prototype_aus",
    "render_capture",
    "render_face",
    "render_scene",
    "sample_aus",
    "sample_identity",
]
