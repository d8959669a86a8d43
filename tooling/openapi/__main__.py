from tooling.openapi.generate import main

raise SystemExit(main())
