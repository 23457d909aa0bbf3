"""``python -m cyclegan_hub.cli ...`` (and ``accelerate launch -m cyclegan_hub.cli ...``) runs the command."""

import sys

from . import main

sys.exit(main())
