"""python -m mindspore_ptq.app.cli ..."""
import sys

from . import console_main

sys.exit(console_main())
