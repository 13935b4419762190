"""``python -m prepaid_wallet``: the ``prepaid-wallet`` command line.

See :mod:`prepaid_wallet.cli` for the commands and exit codes.
"""

import sys

from prepaid_wallet.cli import main

sys.exit(main())
