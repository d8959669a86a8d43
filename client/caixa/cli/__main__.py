"""`python -m caixa.cli`, for when the `caixa` script is not on PATH."""

import sys

from caixa.cli.main import main

sys.exit(main())
