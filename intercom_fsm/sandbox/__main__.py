"""``python -m intercom_fsm.sandbox``: run the sandbox backend."""

import sys

from intercom_fsm.sandbox.cli import main

sys.exit(main())
