import sys

from .machinery.cli import main

sys.exit(main())
