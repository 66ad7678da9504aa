"""`python -m pytest_lmbehave diff OLD.json NEW.json`."""

import sys

from .cli import main

sys.exit(main())
