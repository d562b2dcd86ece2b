"""`python -m assistant.testing ARGS`: `jxa ARGS` with the fakes registered (the hardening's index-kill
check builds indexes with the fake embedder in a child process this way)."""

import sys

from ..cli import main
from .fakes import register_fakes

register_fakes()
sys.exit(main(sys.argv[1:]))
