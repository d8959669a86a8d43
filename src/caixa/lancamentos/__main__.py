from caixa.lancamentos.main import main

main()
