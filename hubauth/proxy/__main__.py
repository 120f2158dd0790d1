"""``python -m hubauth.proxy``: the same as the ``hubauth-proxy`` command."""

import sys

from . import main

sys.exit(main())
