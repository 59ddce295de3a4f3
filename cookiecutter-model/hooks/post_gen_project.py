"""Report what was created and what to do next."""

from pathlib import Path

slug = "{{ cookiecutter.model_slug }}"
print(f"Created {Path.cwd()}")
print(f"Next: cd {Path.cwd()} && python train.py   (then: bentoml serve service:{{ cookiecutter.__service_class }})")
print(f"      or from the repo root: tox -e model-{slug}")
