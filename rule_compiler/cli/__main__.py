"""``python -m rule_compiler.cli``."""

import sys

from rule_compiler.cli import main

sys.exit(main())
