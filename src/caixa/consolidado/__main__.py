from caixa.consolidado.main import main

main()
