import sys

from slim.sweep.cli import main

sys.exit(main())
