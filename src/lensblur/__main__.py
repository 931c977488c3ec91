import sys

from lensblur.cli import main

sys.exit(main())
