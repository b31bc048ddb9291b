"""``python -m typed_queues.runtime.cli``: the ``queues`` command."""

import sys

from . import main

sys.exit(main())
