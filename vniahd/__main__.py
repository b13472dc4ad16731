import sys

from vniahd.cli import main

sys.exit(main())
