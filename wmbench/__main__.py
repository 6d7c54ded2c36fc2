"""``python -m wmbench``: the same command line as ``wmbench``."""

import sys

from wmbench.cli import main

sys.exit(main())
