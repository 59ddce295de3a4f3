"""Refuse bad answers before any file is written; cookiecutter then removes the new folder.

The rules are in model_template.py beside this file (standard library only); `modelctl new` applies the same.
"""

import json
import sys
from pathlib import Path

TEMPLATE = Path({{ template_folder | tojson }})
sys.path.insert(0, str(TEMPLATE / "hooks"))
import model_template  # noqa: E402

sys.exit(model_template.pre_gen(json.loads({{ cookiecutter | tojson | tojson }}), TEMPLATE))
