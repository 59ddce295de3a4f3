"""The template's answers: taken literally, checked, and every one a person can type bakes a valid model or is
refused with nothing written. Also what the hooks add to a baked model: its own ports and `.template.json`.

Every test bakes for real (cookiecutter's API or its CLI) into temporary folders; git repositories are real,
with an identity from the environment, never from the machine's configuration.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from cookiecutter.exceptions import FailedHookException
from cookiecutter.main import cookiecutter
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from modelkit import FRAMEWORKS, INPUTS, TASKS, ModelConfig, load_config

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "cookiecutter-model"
TEXT_KEYS = ("model_name", "description", "owner")
GIT_ENV = {
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.com",
}


def load_rules() -> ModuleType:
    spec = importlib.util.spec_from_file_location("model_template_under_test", TEMPLATE / "hooks/model_template.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


RULES = load_rules()


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """cookiecutter writes a replay file to ~ and reads ~/.cookiecutterrc: neither may be the machine's.
    git never reads the machine's configuration either."""
    monkeypatch.setenv("HOME", str(tmp_path_factory.mktemp("home")))
    monkeypatch.delenv("COOKIECUTTER_CONFIG", raising=False)
    for key, value in GIT_ENV.items():
        monkeypatch.setenv(key, value)


def bake(models: Path, template: Path = TEMPLATE, **answers: str) -> Path:
    """Bake with cookiecutter's API, like `cookiecutter TEMPLATE -o models --no-input k=v ...`."""
    return Path(cookiecutter(str(template), output_dir=str(models), no_input=True, extra_context=answers))


def run(*args: str, cwd: Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), cwd=cwd, input=stdin, capture_output=True, text=True, timeout=300, check=False)


def cli_bake(cwd: Path, *answers: str, template: Path = TEMPLATE) -> subprocess.CompletedProcess[str]:
    """Plain `cookiecutter TEMPLATE -o models --no-input k=v ...`, as a user types it."""
    return run(sys.executable, "-m", "cookiecutter", str(template), "-o", "models", "--no-input", *answers, cwd=cwd)


def git(cwd: Path, *args: str) -> str:
    result = run("git", *args, cwd=cwd)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def notebook_intro(project: Path) -> list[str]:
    notebook = json.loads((project / "notebooks" / f"{project.name}.ipynb").read_text(encoding="utf-8"))
    return list(notebook["cells"][0]["source"])


@pytest.fixture
def models(tmp_path: Path) -> Path:
    (tmp_path / "models").mkdir()
    return tmp_path / "models"


# --- answers are data ----------------------------------------------------------------------------------------

JINJA = "{{ 7*191 }} and {{ cycler.__init__.__globals__.os.getcwd() }}"


def test_plain_cookiecutter_takes_jinja_in_answers_literally(tmp_path: Path) -> None:
    """The report's command, with plain cookiecutter (issue 15.4): `1337 and /path/of/the/repo` before."""
    (tmp_path / "models").mkdir()
    result = cli_bake(tmp_path, "description={{ 7*191 }}", f"owner={JINJA}")
    assert result.returncode == 0, result.stderr
    config = load_config(tmp_path / "models/iris_classifier/config.yaml", check_folder_name=True)
    assert (config.description, config.owner) == ("{{ 7*191 }}", JINJA)


def test_every_text_answer_is_literal_everywhere_it_lands(models: Path) -> None:
    answers = {
        "model_name": "{% for x in range(3) %}x{% endfor %} {# c #} {{ self }}",
        "model_slug": "jinja",
        "description": JINJA,
        "owner": "{{ lipsum.__globals__['os'].system('touch pwned') }}",
    }
    project = bake(models, **answers)
    config = load_config(project / "config.yaml", check_folder_name=True)
    assert (config.description, config.owner) == (answers["description"], answers["owner"])
    assert notebook_intro(project)[:3] == [f"# {answers['model_name']}: exploration\n", "\n", f"{JINJA}\n"]
    readme = (project / "README.md").read_text(encoding="utf-8")
    assert readme.startswith(f"# {answers['model_name']}\n\n{JINJA}\n")
    record = json.loads((project / ".template.json").read_text(encoding="utf-8"))
    assert record["answers"] == {**answers, "framework": "sklearn", "task": "classification", "input": "tabular"}
    assert not list(models.parent.rglob("pwned")) and not Path("pwned").exists()


def test_jinja_in_the_slug_is_refused_not_rendered(tmp_path: Path) -> None:
    (tmp_path / "models").mkdir()
    result = cli_bake(tmp_path, "model_slug={{ 'ok' }}")
    assert result.returncode != 0
    assert "model_slug \"{{ 'ok' }}\" must match [a-z][a-z0-9_]*" in result.stdout + result.stderr
    assert list((tmp_path / "models").iterdir()) == []


def test_interactive_answers_are_literal_too(tmp_path: Path) -> None:
    (tmp_path / "models").mkdir()
    typed = ["Typed {{ 7*191 }}", "typed", "{{ 7*191 }}", "team", "2", "2", "1"]
    result = run(
        sys.executable, "-m", "cookiecutter", str(TEMPLATE), "-o", "models", cwd=tmp_path, stdin="\n".join(typed) + "\n"
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    config = load_config(tmp_path / "models/typed/config.yaml")
    assert (config.description, config.framework, config.task) == ("{{ 7*191 }}", "xgboost", "regression")
    assert notebook_intro(tmp_path / "models/typed")[0] == "# Typed {{ 7*191 }}: exploration\n"


def test_the_templates_own_expressions_still_render(models: Path) -> None:
    project = bake(models, model_name="Fraud-Score Model", framework="lightgbm")
    assert project.name == "fraud_score_model"
    assert "class FraudScoreModel(ModelService):" in (project / "service.py").read_text()
    assert "iris" not in (project / "train.py").read_text().lower()  # __dataset: wine for lightgbm


def test_a_templated_sub_folder_name_still_renders(tmp_path: Path) -> None:
    """The extension trusts the template's own file and folder names, also a templated sub-folder's."""
    template = tmp_path / "cookiecutter-model"
    shutil.copytree(TEMPLATE, template, ignore=shutil.ignore_patterns("__pycache__", "tests"))
    extra = template / "{{cookiecutter.model_slug}}" / "data_{{cookiecutter.model_slug}}"
    extra.mkdir()
    (extra / "{{cookiecutter.model_slug}}.txt").write_text("{{ cookiecutter.description }}\n")
    (tmp_path / "models").mkdir()
    project = bake(tmp_path / "models", template=template, model_name="Sub", description="{{ 1+1 }}")
    assert (project / "data_sub" / "sub.txt").read_text() == "{{ 1+1 }}\n"


# --- answers that are refused ----------------------------------------------------------------------------------


def test_slug_is_derived_from_the_name_and_may_be_given(models: Path) -> None:
    project = bake(models, model_name="Fraud-Score Model")
    assert project.name == "fraud_score_model"
    assert "class FraudScoreModel(ModelService):" in (project / "service.py").read_text()
    assert bake(models, model_name="Anything", model_slug="fraud_v2").name == "fraud_v2"


def test_text_answers_with_quotes_and_colons_stay_valid_yaml(models: Path) -> None:
    answers = {"description": "Scores: churn, fraud & 'risk' \"now\" \\o/ # not a comment", "owner": "ml: core"}
    config = load_config(bake(models, model_name="Odd", **answers) / "config.yaml")
    assert (config.description, config.owner) == (answers["description"], answers["owner"])


@pytest.mark.parametrize(
    ("answers", "message"),
    [
        (["model_slug=9lives"], "must match [a-z][a-z0-9_]*"),
        (["model_slug=Has-Dash"], "must match [a-z][a-z0-9_]*"),
        (["model_slug=churn\n"], "model_slug 'churn\\n' must match [a-z][a-z0-9_]*"),
        (["model_slug=" + "m" * 41], "the limit is 40"),
        (["model_slug=lambda"], "is a Python keyword"),
        (["model_slug=none"], "is a Python keyword (or its service class would be)"),
        (["model_slug=o_"], "makes the service class 'O', an ambiguous name"),
        (["model_slug=logging"], "standard-library module name"),
        (["model_slug=numpy"], "is reserved"),
        (["model_name=Modèle"], "(derived from model_name 'Modèle': choose a model_slug"),
        (["framework=spark"], "framework"),
        (["task=clustering"], "task"),
        (["input=audio"], "audio provided for choice variable input"),
        (
            ["input=text", "task=regression"],
            "input 'text' comes with an example for framework sklearn and task classification, not framework "
            "'sklearn' with task 'regression'",
        ),
        (
            ["input=image", "framework=xgboost"],
            "input 'image' comes with an example for framework sklearn or pytorch or tensorflow and task "
            "classification, not framework 'xgboost'",
        ),
        (["input=image", "framework=pytorch", "task=regression"], "not framework 'pytorch' with task 'regression'"),
        (["model_name=Churn", "owner="], "owner must not be empty"),
        (["model_name=Churn", "owner=  "], "owner must not be empty"),
        (["description=two\nlines"], "description must be one line"),
        (["description=a\u2028b"], "description must be one line"),
        (["owner=tab\there"], "owner contains U+0009, a control or invisible character"),
        (["owner=\u202eevil"], "owner contains U+202E, a control or invisible character"),
        (["owner=zero\u200bwidth"], "owner contains U+200B, a control or invisible character"),
        (["description=\ufeffbom"], "description contains U+FEFF, a control or invisible character"),
        (["description=soft\u00adhyphen"], "description contains U+00AD, a control or invisible character"),
        (["description=" + "d" * 501], "description is 501 characters; the limit is 500"),
    ],
)
def test_refused_answers_leave_nothing_behind(tmp_path: Path, answers: list[str], message: str) -> None:
    (tmp_path / "models").mkdir()
    result = cli_bake(tmp_path, *answers)
    assert result.returncode != 0
    assert message in result.stdout + result.stderr
    assert list((tmp_path / "models").iterdir()) == []


def test_existing_model_is_refused_and_kept(tmp_path: Path) -> None:
    (tmp_path / "models").mkdir()
    project = bake(tmp_path / "models")
    (project / "train.py").write_text("# my work\n")
    result = cli_bake(tmp_path)
    assert result.returncode != 0
    assert "already exists" in result.stdout + result.stderr
    assert (project / "train.py").read_text() == "# my work\n"


# --- any answer a person can type: property test, baking for real ------------------------------------------------

# Pieces of text that broke or could break a baked file: Jinja, YAML and JSON syntax, quoting, unicode.
HOSTILE = [
    "{{ 7*191 }}",
    "{% raw %}",
    "{% endraw %}",
    "{#",
    "}}",
    '"',
    "'",
    "\\",
    "\\n",
    "\\u0041",
    ": ",
    " #",
    "&a",
    "*a",
    "!!python/object/apply:os.system ['id']",
    "- ",
    "? ",
    "|",
    ">",
    "%",
    "@",
    "`",
    "---",
    "...",
    "null",
    "~",
    "yes",
    "0x1F",
    "1e3",
    "<script>",
    "</textarea>",
    "😀",
    "👩‍🔬",
    "é",
    "e\u0301",
    "中文",
    "עברית",
    "\u00a0",
    "\ufeff",
    "\U0010ffff",
    "\ue000",
]
# What a person can type but a one-line answer must not hold: refused, never half-baked.
REFUSED = ["\n", "\r\n", "\t", "\x00", "\x1b[31m", "\x85", "\u2028", "\u202e", "\udc80", "\uffff"]
printable = st.characters(
    blacklist_categories=("Cc", "Cs", "Zl", "Zp"), blacklist_characters=sorted(RULES.BIDI_CONTROLS) + ["\ufffe"]
)
pieces = st.sampled_from(HOSTILE) | st.text(printable, max_size=8)
printable_text = st.lists(pieces, min_size=1, max_size=8).map("".join).filter(str.strip)
any_text = st.lists(pieces | st.sampled_from(REFUSED), min_size=0, max_size=8).map("".join)
valid_slug = st.from_regex(r"[a-z][a-z0-9_]{0,12}", fullmatch=True)


@st.composite
def answer_sets(draw: st.DrawFn) -> dict[str, str]:
    """Half the time anything a person can type (mostly refused), half the time printable text (mostly baked)."""
    if draw(st.booleans()):
        answers = {key: draw(any_text) for key in TEXT_KEYS}
        slug = draw(st.none() | any_text)
    else:
        answers = {key: draw(printable_text) for key in TEXT_KEYS}
        slug = draw(valid_slug)
    return answers if slug is None else {**answers, "model_slug": slug}


def expected_problems(answers: dict[str, Any]) -> list[str]:
    full = {"framework": "sklearn", "task": "classification", **answers}
    if "model_slug" not in answers:
        full["model_slug"] = RULES.derived_slug(answers["model_name"])
    return list(RULES.answer_problems(full, RULES.template_choices(TEMPLATE)))


@contextmanager
def scratch_models() -> Iterator[Path]:
    """A scratch monorepo (its ruff configuration, an empty models/) per example: hypothesis reuses fixtures."""
    with tempfile.TemporaryDirectory() as scratch:
        shutil.copy2(ROOT / "pyproject.toml", Path(scratch) / "pyproject.toml")
        (Path(scratch) / "models").mkdir()
        yield Path(scratch) / "models"


def ruff(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return run(sys.executable, "-m", "ruff", *args, "--no-cache", cwd=cwd)


# More examples for a deeper run: MODEL_TEMPLATE_ANSWER_EXAMPLES=500 tox run -e template -- -k any_typed
@settings(
    max_examples=int(os.environ.get("MODEL_TEMPLATE_ANSWER_EXAMPLES", "80")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(answers=answer_sets())
def test_any_typed_answer_bakes_a_valid_model_or_is_refused(answers: dict[str, str]) -> None:
    name, description, owner = (answers[key] for key in TEXT_KEYS)
    refused = expected_problems(answers)
    event("refused" if refused else "baked")
    with scratch_models() as models:
        if refused:
            with pytest.raises(FailedHookException):
                bake(models, **answers)
            assert list(models.iterdir()) == []
            return
        project = bake(models, **answers)
        config = load_config(project / "config.yaml", check_folder_name=True)
        assert isinstance(config, ModelConfig)
        assert (config.description, config.owner) == (description, owner)
        assert notebook_intro(project)[:3] == [f"# {name}: exploration\n", "\n", f"{description}\n"]
        readme = (project / "README.md").read_text(encoding="utf-8")
        assert readme.startswith(f"# {name}\n\n{description}\n")
        record = json.loads((project / ".template.json").read_text(encoding="utf-8"))
        assert {k: record["answers"][k] for k in answers} == answers
        # ruff as the monorepo runs it: the model's own modules are first-party (`src = ["models/*"]`)
        python = [str(p) for p in project.rglob("*.py")] + [str(project / "notebooks")]
        lint, formatted = (
            ruff("check", *python, cwd=models.parent),
            ruff("format", "--check", *python, cwd=models.parent),
        )
        assert lint.returncode == 0 and formatted.returncode == 0, lint.stdout + formatted.stdout


# --- the rules' sources of truth --------------------------------------------------------------------------------


def test_choices_come_from_cookiecutter_json_and_equal_the_schemas() -> None:
    assert RULES.template_choices(TEMPLATE) == {"framework": FRAMEWORKS, "task": TASKS, "input": INPUTS}
    assert set(RULES.INPUT_EXAMPLES) < set(INPUTS)
    for frameworks, tasks in RULES.INPUT_EXAMPLES.values():
        assert set(frameworks) <= set(FRAMEWORKS) and set(tasks) <= set(TASKS)


def test_a_record_without_input_is_a_tabular_model() -> None:
    """Models baked before the `input` answer existed (issue 21) upgrade as tabular ones."""
    answers = {"model_name": "Old", "model_slug": "old", "description": "d", "owner": "o", "framework": "sklearn"}
    assert RULES.answer_problems({**answers, "task": "regression"}, RULES.template_choices(TEMPLATE)) == []
    assert RULES.combination_problems({**answers, "task": "regression"}) == []


def test_text_limits_are_the_schemas() -> None:
    for key in ("description", "owner"):
        limit = next(m.max_length for m in ModelConfig.model_fields[key].metadata if hasattr(m, "max_length"))
        assert RULES.TEXT_LIMITS[key] == limit


@pytest.mark.parametrize("name", ["Iris Classifier", "  Fraud-Score  model ", "a-b c_d", "X"])
def test_derived_slug_mirrors_cookiecutter_json(models: Path, name: str) -> None:
    slug = RULES.derived_slug(name)
    project = bake(models, model_name=name)
    assert project.name == slug
    assert f"class {RULES.service_class(slug)}(ModelService):" in (project / "service.py").read_text()


@pytest.mark.parametrize(
    "slug",
    [
        "l",
        "x_1",
        "a" * 33,
        "a" * 40,
    ],
)
def test_edge_slugs_bake_lint_clean_models(slug: str) -> None:
    with scratch_models() as models:
        project = bake(models, model_slug=slug)
        lint, formatted = (
            ruff("check", str(project), cwd=models.parent),
            ruff("format", "--check", str(project), cwd=models.parent),
        )
        assert lint.returncode == 0 and formatted.returncode == 0, lint.stdout + formatted.stdout


def test_hook_code_is_lint_clean() -> None:
    files = [str(TEMPLATE / "hooks/model_template.py"), str(TEMPLATE / "local_extensions.py")]
    assert ruff("check", *files).returncode == 0
    assert ruff("format", "--check", *files).returncode == 0


# --- ports (issue 10) -------------------------------------------------------------------------------------------


def ports(project: Path) -> dict[str, int]:
    return load_config(project / "config.yaml").serving.ports.model_dump()


def test_each_baked_model_gets_ports_no_other_model_uses(models: Path) -> None:
    baked = [
        bake(models, model_name=f"Model {i}", framework=f) for i, f in enumerate(("sklearn", "pytorch", "xgboost"))
    ]
    blocks = [ports(p) for p in baked]
    assert blocks[0] == {"dev": 3000, "staging": 3100, "production": 3200}  # the first model: the schema's defaults
    assert blocks[1] == {"dev": 3001, "staging": 3101, "production": 3201}
    every = [port for block in blocks for port in block.values()]
    assert len(set(every)) == len(every) == 9


def test_a_sibling_without_ports_keeps_the_defaults(models: Path) -> None:
    (models / "old").mkdir()
    (models / "old/config.yaml").write_text("name: old\ndescription: d\nowner: o\nframework: sklearn\n")
    (models / "other").mkdir()
    (models / "other/config.yaml").write_text(
        "name: other\nserving:  # block style, one port moved\n  ports:\n    dev: 3001\n    staging: 3102\n"
    )
    # taken: 3000/3100/3200 (old's defaults, other's production), 3001 and 3102 (other's): blocks 1 and 2 collide
    assert ports(bake(models, model_name="New One")) == {"dev": 3003, "staging": 3103, "production": 3203}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name: x\n", {"dev": 3000, "staging": 3100, "production": 3200}),
        ("serving:\n  ports: {dev: 4000, staging: 4100, production: 4200}  # c\n", (4000, 4100, 4200)),
        ("serving:\n  workers: 2\n  ports:\n    production: 5000\n  tracing: false\n", (3000, 3100, 5000)),
        ("serving: {workers: 1, ports: {dev: 6000}}\n", (6000, 3100, 3200)),
        ("serving:\n  ports: {\n    dev: 7000,\n    staging: 7001}\nloadtest:\n  dev: 1\n", (7000, 7001, 3200)),
        ("deploy:\n  ports: {dev: 9999}\n", (3000, 3100, 3200)),
    ],
)
def test_ports_are_read_from_any_config_style(text: str, expected: dict[str, int] | tuple[int, ...]) -> None:
    want = (
        expected if isinstance(expected, dict) else dict(zip(("dev", "staging", "production"), expected, strict=True))
    )
    assert RULES.ports_in(text) == want


def test_port_blocks_fill_gaps_and_never_overlap() -> None:
    used = {3000, 3100, 3200, 3101}
    assert RULES.free_block(used) == {"dev": 3002, "staging": 3102, "production": 3202}
    taken: set[int] = set()
    for _ in range(250):  # past the first hundred blocks: 3300/3400/3500 next
        block = RULES.free_block(taken)
        assert taken.isdisjoint(block.values())
        taken.update(block.values())
    assert RULES.free_block(set()) == {"dev": 3000, "staging": 3100, "production": 3200}
    assert max(taken) < 4000


# --- where a model came from (issue 12.2) ------------------------------------------------------------------------


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A real git repository holding the template, committed."""
    root = tmp_path / "repo"
    shutil.copytree(TEMPLATE, root / "cookiecutter-model", ignore=shutil.ignore_patterns("__pycache__"))
    (root / "models").mkdir()
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "template")
    return root


def test_the_record_names_the_committed_template_tree(repo: Path) -> None:
    result = cli_bake(
        repo, "model_name=Churn", "framework=xgboost", "description=d: {{ x }}", template=Path("cookiecutter-model")
    )
    assert result.returncode == 0, result.stderr
    text = (repo / "models/churn/.template.json").read_text(encoding="utf-8")
    record = json.loads(text)
    assert list(record) == ["template", "template_tree", "template_commit", "answers"]
    assert record["template"] == "cookiecutter-model"
    assert record["template_tree"] == git(repo, "rev-parse", "HEAD:cookiecutter-model")
    assert record["template_commit"] == git(repo, "rev-parse", "HEAD")
    assert record["answers"] == {
        "model_name": "Churn",
        "model_slug": "churn",
        "description": "d: {{ x }}",
        "owner": "data-science",
        "framework": "xgboost",
        "task": "classification",
        "input": "tabular",
    }
    assert text.endswith("}\n")
    assert git(repo, "status", "--porcelain", "--", "cookiecutter-model") == ""  # the repo's own index untouched


def test_the_record_names_an_uncommitted_template_as_it_was_on_disk(repo: Path) -> None:
    service = repo / "cookiecutter-model/{{cookiecutter.model_slug}}/service.py"
    service.write_text(service.read_text() + "# a local change\n")
    (repo / "cookiecutter-model/{{cookiecutter.model_slug}}/NEW.md").write_text("new\n")
    staged_before = git(repo, "diff", "--cached", "--name-only")
    record = json.loads((bake(repo / "models", template=repo / "cookiecutter-model") / ".template.json").read_text())
    assert git(repo, "diff", "--cached", "--name-only") == staged_before
    git(repo, "add", "-A", "cookiecutter-model")
    git(repo, "commit", "-q", "-m", "template change")
    assert record["template_tree"] == git(repo, "rev-parse", "HEAD:cookiecutter-model")
    assert record["template_commit"] == git(repo, "rev-parse", "HEAD~1")


def test_outside_git_the_record_has_no_version(tmp_path: Path) -> None:
    template = tmp_path / "cookiecutter-model"
    shutil.copytree(TEMPLATE, template, ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "models").mkdir()
    record = json.loads((bake(tmp_path / "models", template=template) / ".template.json").read_text())
    assert (record["template_tree"], record["template_commit"]) == (None, None)
    assert record["answers"]["model_slug"] == "iris_classifier"


def test_two_template_copies_in_one_process_each_record_their_own(repo: Path, tmp_path: Path) -> None:
    """cookiecutter imports the extension once per process; each bake still finds its own template folder."""
    other = tmp_path / "other"
    shutil.copytree(repo, other)
    (other / "cookiecutter-model/hooks/extra.txt").write_text("x\n")
    git(other, "add", "-A")
    git(other, "commit", "-q", "-m", "differs")
    first = json.loads((bake(repo / "models", template=repo / "cookiecutter-model") / ".template.json").read_text())
    second = json.loads((bake(other / "models", template=other / "cookiecutter-model") / ".template.json").read_text())
    assert first["template_tree"] == git(repo, "rev-parse", "HEAD:cookiecutter-model")
    assert second["template_tree"] == git(other, "rev-parse", "HEAD:cookiecutter-model")
    assert first["template_tree"] != second["template_tree"]
