"""`python -m phanet ...` (what `torchrun -m phanet train ...` runs)."""

import sys

from phanet.cli import main

sys.exit(main())
