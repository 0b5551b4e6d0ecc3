from clvbayes.cli import main

raise SystemExit(main())
