"""``python -m zerocon.cli``."""

import sys

from zerocon.cli.main import main

sys.exit(main())
