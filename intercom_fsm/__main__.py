import sys

from intercom_fsm.cli import main

sys.exit(main())
