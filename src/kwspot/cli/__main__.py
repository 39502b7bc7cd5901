"""``python -m kwspot.cli``: the same as the ``kwspot`` command."""

import sys

from kwspot.cli import main

sys.exit(main())
