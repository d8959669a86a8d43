from services.lancamentos.main import main

main()
