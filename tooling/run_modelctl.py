"""Run modelctl from this checkout without installing it.

pre-commit hooks use this: a `repo: local` hook cannot install a path dependency, so the
hook environment gets modelctl's PyPI dependencies and this file puts the checkout's
`tooling/src` and `shared/src` on the path.
"""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE / "src"), str(HERE.parent / "shared" / "src")]

from modelctl.main import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
