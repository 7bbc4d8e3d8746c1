"""Moved to benchmarks/evaluation.py (measurement helpers are not used at cover time); this re-export keeps
`covergen.evaluation` imports in uncommitted work going until they are updated."""
from benchmarks.evaluation import *  # noqa: F401,F403
from benchmarks.evaluation import SHARED_DATA  # noqa: F401
