"""`python -m caixa.devstack`: see caixa.devstack.main."""

from caixa.devstack.main import main

main()
