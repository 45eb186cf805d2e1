from cadenza.cli import main

raise SystemExit(main())
