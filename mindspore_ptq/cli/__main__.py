"""python -m mindspore_ptq.cli ..."""
from . import main

main()
