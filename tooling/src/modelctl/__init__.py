"""modelctl: the model lifecycle CLI of this monorepo.

Importing modelctl seals the importing process first (`processenv.seal_own_environment`: non-dumpable, so its
``/proc/<pid>/environ`` and memory are readable by root only): modelctl holds credentials while the code of
models runs beside it as the same user. Sealing here, before the CLI's imports (about 1.5 s), leaves no window;
it also covers the Airflow tasks, which import modelctl inside the worker.
"""

from modelctl.processenv import seal_own_environment

__version__ = "0.1.0"

seal_own_environment()
