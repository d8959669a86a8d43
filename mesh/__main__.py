"""`python -m mesh` is `caixa-mesh`."""

import sys

from mesh.cli import main

sys.exit(main())
