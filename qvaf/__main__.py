"""qvaf command line: ``python -m qvaf``."""
import sys

from qvaf.runtime.cli import main

sys.exit(main())
