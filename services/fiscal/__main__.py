from services.fiscal.main import main

main()
