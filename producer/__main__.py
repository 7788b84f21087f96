"""`python -m producer ...` is `ews-ir ...` (for environments without the console script on the PATH)."""

import sys

from producer.cli import main

sys.exit(main())
