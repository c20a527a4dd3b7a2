from buildspec.cli import main

raise SystemExit(main())
