import sys

from eventhorizon.cli import main

sys.exit(main())
