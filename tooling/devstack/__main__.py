"""`python -m tooling.devstack`: see tooling.devstack.main."""

from tooling.devstack.main import main

main()
