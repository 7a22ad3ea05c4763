import sys

from adamotion.cli import main

sys.exit(main())
