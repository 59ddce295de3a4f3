"""Give the new model a port block no other model uses, record where it came from, say what to do next.

The logic is in model_template.py beside this file (standard library only).
"""

import json
import sys
from pathlib import Path

TEMPLATE = Path({{ template_folder | tojson }})
sys.path.insert(0, str(TEMPLATE / "hooks"))
import model_template  # noqa: E402

sys.exit(model_template.post_gen(json.loads({{ cookiecutter | tojson | tojson }}), TEMPLATE, Path.cwd()))
