from s2s_eval.cli import main

raise SystemExit(main())
