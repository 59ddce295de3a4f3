"""BentoML's command line in the platform's own environment, sealed before anything else runs.

    python -I platform_bentoml.py ARGS...     (stdin: one line, a JSON object of variables to add)

The credentials a call needs (BentoCloud's token) arrive on stdin, not in the environment the process starts
with, so they never appear in ``/proc/<pid>/environ``; the process is made non-dumpable first (its memory is then
readable by root only). Run by modelctl.platformenv, never from a model's environment.
"""

import ctypes
import json
import os
import runpy
import sys

_PR_SET_DUMPABLE = 4

if sys.platform.startswith("linux"):
    ctypes.CDLL(None).prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0)
line = sys.stdin.readline()
added = json.loads(line) if line.strip() else {}
if not isinstance(added, dict):
    raise SystemExit("platform_bentoml: stdin must hold a JSON object of environment variables")
os.environ.update({str(name): str(value) for name, value in added.items()})
sys.argv = ["bentoml", *sys.argv[1:]]
runpy.run_module("bentoml", run_name="__main__", alter_sys=True)
