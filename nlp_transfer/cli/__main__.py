"""`python -m nlp_transfer.cli` (and `accelerate launch -m nlp_transfer.cli`): the console script."""

import sys

from nlp_transfer.cli.app import main

sys.exit(main())
