"""python -m mindspore_ptq.app.cli ..."""
from . import main

main()
