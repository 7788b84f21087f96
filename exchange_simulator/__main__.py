"""`python -m exchange_simulator serve ...`: see `exchange_simulator.cli`."""

import sys

from exchange_simulator.cli import main

sys.exit(main())
