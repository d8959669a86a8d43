from caixa.openapi.generate import main

raise SystemExit(main())
