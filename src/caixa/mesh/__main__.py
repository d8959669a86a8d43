"""`python -m caixa.mesh` is `caixa-mesh`."""

import sys

from caixa.mesh.cli import main

sys.exit(main())
