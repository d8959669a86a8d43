from services.consolidado.main import main

main()
