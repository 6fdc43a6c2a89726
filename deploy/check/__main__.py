"""`python -m deploy.check`."""

import sys

from deploy.check import main

sys.exit(main(sys.argv[1:]))
