"""``python -m adapter.cli``: the command line, as the ``imr-adapter`` script runs it."""

import sys

from adapter.cli import main

sys.exit(main())
