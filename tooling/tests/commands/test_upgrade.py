"""`modelctl upgrade` in real git monorepos: bake at one commit, change the template, merge into the models.

Every test builds its own monorepo from this checkout's template (plus one throw-away file the
template later removes), bakes models with plain cookiecutter (the real hooks on, replay files in
tmp_path), and writes `.template.json` itself unless the template's post-gen hook already did.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from modelctl import upgrade as logic
from modelctl.main import main
from tests.conftest import COPY, IGNORE, ROOT, Result, git

PROJECT = "{{cookiecutter.model_slug}}"
FRAMEWORKS = ("sklearn", "xgboost", "lightgbm", "pytorch")
# Lines the template change and the model edits below touch; each appears in every bake.
OBSOLETE = "OBSOLETE.md"
ADDED = "CHANGELOG.md"
# The first integer default under a section of the template's config.yaml (ports are the hook's).
DEFAULT = re.compile(r"^(?P<lead>[ ]+(?!ports\b)(?P<key>\w+): )(?P<value>\d+)\b", re.MULTILINE)
DESCRIPTION = re.compile(r"^description: .*$", re.MULTILINE)


# --- building monorepos ------------------------------------------------------------------------


def make_monorepo(repo: Path, init: bool = True) -> Path:
    """This checkout's platform files, committed; the template has one extra file to remove later."""
    for item in COPY:
        source = ROOT / item
        if source.is_dir():
            shutil.copytree(source, repo / item, ignore=IGNORE)
        else:
            (repo / item).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, repo / item)
    (repo / "models").mkdir()
    (repo / "cookiecutter-model" / PROJECT / OBSOLETE).write_text("Notes on {{ cookiecutter.model_slug }}.\n")
    if init:
        git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "platform")
    return repo


def template_defaults(repo: Path) -> dict[str, str]:
    data = json.loads((repo / "cookiecutter-model/cookiecutter.json").read_text())
    return {k: (v[0] if isinstance(v, list) else v) for k, v in data.items() if not k.startswith("_")}


def bake(repo: Path, name: str, framework: str = "sklearn", **answers: str) -> Path:
    """`cookiecutter` as a user runs it (hooks on), then the record as TEAM.md describes it."""
    from cookiecutter.main import cookiecutter

    rc = repo.parent / "cookiecutterrc.yaml"  # replay files go to tmp_path, not $HOME
    rc.write_text(f"replay_dir: {repo.parent / 'replay'}\ncookiecutters_dir: {repo.parent / 'cookiecutters'}\n")
    context = {"model_name": name, "framework": framework, **answers}
    folder = Path(
        cookiecutter(
            str(repo / "cookiecutter-model"),
            output_dir=str(repo / "models"),
            no_input=True,
            extra_context=context,
            config_file=str(rc),
        )
    )
    if not (folder / logic.RECORD_FILE).exists():  # the post-gen hook that writes it is being built
        write_record(repo, folder, context)
    return folder


def write_record(repo: Path, folder: Path, answers: dict[str, str]) -> None:
    full = {**template_defaults(repo), **answers, "model_slug": folder.name}
    keys = ("model_name", "model_slug", "description", "owner", "framework", "task")
    record = {
        "template": "cookiecutter-model",
        "template_tree": git(repo, "rev-parse", "HEAD:./cookiecutter-model").strip(),
        "template_commit": git(repo, "rev-parse", "HEAD").strip(),
        "answers": {k: full[k] for k in keys if k in full},
    }
    (folder / logic.RECORD_FILE).write_text(json.dumps(record, indent=2) + "\n")


def commit_all(repo: Path, message: str) -> None:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)


def edit(path: Path, change: Callable[[str], str]) -> None:
    before = path.read_text()
    after = change(before)
    assert after != before, f"the edit did not apply to {path}"
    path.write_text(after)


def default(path: Path) -> tuple[str, int]:
    """The key and value of the config default the template change moves (+1); the model's edit: +5."""
    found = DEFAULT.search(path.read_text())
    assert found, f"no integer default left in {path}: choose another line for these tests"
    return found["key"], int(found["value"])


def set_default(path: Path, value: int) -> None:
    edit(path, lambda t: DEFAULT.sub(lambda m: f"{m['lead']}{value}", t, count=1))


def change_template(repo: Path) -> None:
    """The four kinds of template change issue 12 names: a line in service.py, a new file, a changed
    default in config.yaml, a removed file."""
    template = repo / "cookiecutter-model" / PROJECT
    edit(template / "service.py", lambda t: t + "\n# template fix: every model gets this line\n")
    (template / ADDED).write_text("# Changes to {{ cookiecutter.model_name }}\n")
    set_default(template / "config.yaml", default(template / "config.yaml")[1] + 1)
    (template / OBSOLETE).unlink()
    commit_all(repo, "template: service fix, changelog, a changed default, obsolete notes removed")


def edit_model(folder: Path) -> None:
    """A data scientist's own edits, on lines the template change does not touch."""
    edit(folder / "train.py", lambda t: t + "\n\ndef model_team_helper() -> int:\n    return 42\n")
    edit(folder / "api_schema.py", lambda t: t + '\n\nMODEL_TEAM_NOTE = "owned by the model team"\n')
    edit(folder / "config.yaml", lambda t: DESCRIPTION.sub('description: "Tuned by the model team."', t, count=1))


def tree(repo: Path, rev: str = "HEAD") -> str:
    return git(repo, "rev-parse", f"{rev}:./cookiecutter-model").strip()


def record(folder: Path) -> dict[str, object]:
    data = json.loads((folder / logic.RECORD_FILE).read_text())
    assert isinstance(data, dict)
    return data


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


Run = Callable[..., Result]


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Run:
    """`modelctl ARGS` in-process, from ``cwd``."""

    def invoke(cwd: Path, *args: str) -> Result:
        monkeypatch.chdir(cwd)
        capsys.readouterr()
        try:
            code = main(list(args))
        except SystemExit as exc:
            code = int(exc.code or 0)
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return invoke


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A monorepo with one sklearn model baked at the first template commit and committed."""
    repo = make_monorepo(tmp_path / "repo")
    bake(repo, "Iris Classifier")
    commit_all(repo, "bake iris_classifier")
    return repo


# --- the merge ---------------------------------------------------------------------------------


def test_clean_upgrade_keeps_the_model_edits_and_brings_every_template_change(repo: Path, run: Run) -> None:
    model = repo / "models/iris_classifier"
    baked_tree = tree(repo)
    key, value = default(model / "config.yaml")
    change_template(repo)
    edit_model(model)
    commit_all(repo, "model edits")

    result = run(model / "tests", "upgrade", "iris_classifier").assert_success()  # from a subfolder

    service, config = (model / "service.py").read_text(), (model / "config.yaml").read_text()
    assert service.endswith("# template fix: every model gets this line\n")
    assert f"{key}: {value + 1}" in config and 'description: "Tuned by the model team."' in config, "both sides"
    assert "def model_team_helper() -> int:" in (model / "train.py").read_text()
    assert "MODEL_TEAM_NOTE" in (model / "api_schema.py").read_text()
    assert (model / ADDED).read_text() == "# Changes to Iris Classifier\n"
    assert not (model / OBSOLETE).exists(), "removed from the template and unchanged in the model"
    assert re.search(rf"remove\s+{OBSOLETE}", result.out) and re.search(rf"add\s+{ADDED}", result.out)
    assert re.search(r"merge\s+config.yaml", result.out) and re.search(r"update\s+service.py", result.out)
    assert not list(repo.rglob("*.rej")) and not list(repo.rglob("*.orig"))
    assert not list(model.rglob(".*modelctl-upgrade*")), "no temp files left"
    data = record(model)
    assert data["template_tree"] == tree(repo) != baked_tree
    assert data["template_commit"] == git(repo, "rev-parse", "HEAD").strip()

    commit_all(repo, "upgrade")
    again = run(repo, "upgrade", "iris_classifier").assert_success()
    assert "up to date" in again.out
    assert git(repo, "status", "--porcelain") == "", "a second run changes nothing"


def test_a_template_change_to_the_requirements_locks_the_model_again(repo: Path, run: Run) -> None:
    model = repo / "models/iris_classifier"
    run(repo, "lock", "iris_classifier").assert_success()
    commit_all(repo, "lock iris_classifier")
    edit(
        repo / "cookiecutter-model" / PROJECT / "requirements.txt",
        lambda t: t.replace("sqlalchemy==", "six==1.17.0\nsqlalchemy==", 1),
    )
    commit_all(repo, "template: a new pin")
    assert run(repo, "lock", "--all", "--check").code == 0  # the model has not taken it yet

    result = run(repo, "upgrade", "iris_classifier").assert_success()
    assert "six==1.17.0" in (model / "requirements.txt").read_text()
    assert "the template changed its requirements; locking again" in result.out
    assert re.search(r"^six==1\.17\.0 \\$", (model / "requirements.lock").read_text(), re.M)
    run(repo, "lock", "--all", "--check").assert_success()


def test_edits_on_the_same_lines_leave_conflict_markers_and_exit_1(repo: Path, run: Run) -> None:
    model = repo / "models/iris_classifier"
    key, value = default(model / "config.yaml")
    change_template(repo)
    set_default(model / "config.yaml", value + 5)
    commit_all(repo, "the model changes the same default")

    result = run(repo, "upgrade", "iris_classifier")

    assert result.code == 1
    assert re.search(r"conflict\s+config.yaml\s+\(1 conflict: markers written\)", result.out)
    config = (model / "config.yaml").read_text()
    assert "<<<<<<< models/iris_classifier/config.yaml (yours)" in config
    assert f"{key}: {value + 5}" in config and f"{key}: {value + 1}" in config, "both versions are in the markers"
    assert ">>>>>>> template " in config
    assert (model / "service.py").read_text().endswith("# template fix: every model gets this line\n")
    assert not list(repo.rglob("*.rej"))
    assert record(model)["template_tree"] == tree(repo), "resolving the markers finishes the upgrade"

    again = run(repo, "upgrade", "iris_classifier")
    assert again.code == 1 and "unresolved conflict markers" in again.out


def test_removed_file_the_model_changed_is_kept_and_a_deleted_file_stays_deleted(repo: Path, run: Run) -> None:
    model = repo / "models/iris_classifier"
    change_template(repo)
    (model / OBSOLETE).write_text("Our own notes now.\n")
    (model / "service.py").unlink()
    (model / ADDED).write_text("# Our changelog\n")  # the template adds a file the model already has
    commit_all(repo, "model edits")

    result = run(repo, "upgrade", "iris_classifier")

    assert result.code == 1, "the added file conflicts with the model's own (merged against an empty base)"
    assert (model / OBSOLETE).read_text() == "Our own notes now.\n"
    assert re.search(rf"keep\s+{OBSOLETE}\s+\(removed from the template; yours has changes: kept", result.out)
    assert not (model / "service.py").exists()
    assert re.search(r"skip\s+service.py\s+\(changed in the template; deleted in the model: not restored\)", result.out)
    changelog = (model / ADDED).read_text()
    assert "# Our changelog" in changelog and "# Changes to Iris Classifier" in changelog and "<<<<<<<" in changelog


def test_all_over_frameworks_refuses_a_dirty_model_and_writes_nothing_into_it(repo: Path, run: Run) -> None:
    for framework in FRAMEWORKS[1:]:
        bake(repo, f"{framework} model", framework)
    (repo / "models/legacy").mkdir()  # baked before records existed
    shutil.copytree(repo / "models/iris_classifier", repo / "models/legacy", dirs_exist_ok=True)
    (repo / "models/legacy/.template.json").unlink()
    edit(repo / "models/legacy/config.yaml", lambda t: t.replace("name: iris_classifier", "name: legacy"))
    commit_all(repo, "more models")
    change_template(repo)
    for framework in FRAMEWORKS[1:]:
        edit_model(repo / f"models/{framework}_model")
    commit_all(repo, "model edits")
    dirty = repo / "models/iris_classifier"
    edit(dirty / "train.py", lambda t: t + "\n# work in progress\n")
    before = snapshot(dirty)

    result = run(repo, "upgrade", "--all")

    assert result.code == 1, result.out
    rows = {line.split()[0]: line for line in result.out.splitlines() if line.strip()}
    for framework in FRAMEWORKS[1:]:
        assert "upgraded" in rows[f"{framework}_model"]
        folder = repo / f"models/{framework}_model"
        assert (folder / "service.py").read_text().endswith("# template fix: every model gets this line\n")
        assert "def model_team_helper() -> int:" in (folder / "train.py").read_text()
    assert "refused (dirty)" in rows["iris_classifier"] and "no record" in rows["legacy"]
    assert "1 uncommitted change under models/iris_classifier: commit or stash them, or --force" in result.out
    assert snapshot(dirty) == before, "a refused model is not touched"

    forced = run(repo, "upgrade", "--force", "iris_classifier").assert_success()
    assert "upgraded" in forced.out
    assert (dirty / "train.py").read_text().endswith("# work in progress\n"), "uncommitted edits survive --force"
    assert (dirty / "service.py").read_text().endswith("# template fix: every model gets this line\n")


def test_check_lists_models_behind_and_writes_nothing(repo: Path, run: Run) -> None:
    bake(repo, "Wine Classifier", "xgboost")
    commit_all(repo, "wine")
    assert run(repo, "upgrade", "--check", "--all").assert_success().out.count("up to date") == 2

    change_template(repo)
    edit_model(repo / "models/wine_classifier")
    commit_all(repo, "change")
    result = run(repo, "upgrade", "--check", "--all")

    assert result.code == 1
    assert "iris_classifier: behind (4 files)" in result.out and "wine_classifier: behind (4 files)" in result.out
    for action, name in (("update", "service.py"), ("merge", "config.yaml"), ("add", ADDED), ("remove", OBSOLETE)):
        assert re.search(rf"^  {action}\s+{name}", result.out, re.MULTILINE), (action, name)
    assert git(repo, "status", "--porcelain") == "", "--check writes nothing"

    run(repo, "upgrade", "--all").assert_success()
    commit_all(repo, "upgrade")
    assert run(repo, "upgrade", "--check", "--all").code == 0


def test_template_change_that_does_not_reach_a_model_leaves_it_alone(repo: Path, run: Run) -> None:
    edit(repo / "cookiecutter-model/tests/test_template.py", lambda t: t + "\n# a test-only change\n")
    hook = repo / "cookiecutter-model/hooks/pre_gen_project.py"
    edit(hook, lambda t: t + "\nsys.exit(1)  # hooks are off during upgrades\n")
    (repo / "cookiecutter-model/README.md").write_text("How to change the template.\n")  # never baked
    commit_all(repo, "template tests and docs")
    result = run(repo, "upgrade", "iris_classifier").assert_success()
    assert "up to date" in result.out
    assert git(repo, "status", "--porcelain") == "", "no record churn (it would select the model in CI)"


def test_changed_question_defaults_rebake_everything(repo: Path, run: Run) -> None:
    """cookiecutter.json changes that alter what a model renders force a full bake; the record keeps new answers."""
    path = repo / "cookiecutter-model/cookiecutter.json"
    data = json.loads(path.read_text())
    data["licence"] = "Apache-2.0"
    path.write_text(json.dumps(data, indent=2) + "\n")
    edit(repo / "cookiecutter-model" / PROJECT / "README.md", lambda t: t + "\nLicence: {{ cookiecutter.licence }}\n")
    commit_all(repo, "licence question")

    run(repo, "upgrade", "iris_classifier").assert_success()

    model = repo / "models/iris_classifier"
    assert (model / "README.md").read_text().endswith("\nLicence: Apache-2.0\n")
    answers = record(model)["answers"]
    assert isinstance(answers, dict) and answers["licence"] == "Apache-2.0", "a new question's default is recorded"


def test_a_changed_derived_value_rebakes_the_files_that_read_it(repo: Path, run: Run) -> None:
    path = repo / "cookiecutter-model/cookiecutter.json"
    data = json.loads(path.read_text())
    assert "__service_class" in data, "the template derives __service_class: this test needs a derived value"
    data["__service_class"] = data["__service_class"].replace(" }}", " ~ 'Service' }}")
    path.write_text(json.dumps(data, indent=2) + "\n")
    commit_all(repo, "service classes end in Service")
    template = repo / "cookiecutter-model" / PROJECT
    readers = {
        p.relative_to(template).as_posix().replace(PROJECT, "iris_classifier")
        for p in template.rglob("*")
        if p.is_file() and "__service_class" in p.read_text()
    }

    result = run(repo, "upgrade", "iris_classifier").assert_success()

    assert set(re.findall(r"^  update\s+(\S+)", result.out, re.MULTILINE)) == readers
    assert "class IrisClassifierService(ModelService):" in (repo / "models/iris_classifier/service.py").read_text()


TEAM_FILTER = """\
from jinja2 import pass_context
from jinja2.ext import Extension


@pass_context
def team(context, _value):
    return context["cookiecutter"]["__team"]


class TeamFilter(Extension):
    def __init__(self, environment):
        super().__init__(environment)
        environment.filters["team"] = team
"""


def test_an_extension_that_reads_the_context_rebakes_everything(tmp_path: Path, run: Run) -> None:
    """A filter that reads answers from the render context hides them from the per-file analysis."""
    repo = make_monorepo(tmp_path / "repo")
    template = repo / "cookiecutter-model"
    (template / "upgrade_test_ext.py").write_text(TEAM_FILTER)
    data = json.loads((template / "cookiecutter.json").read_text())
    data["__team"] = "{{ cookiecutter.owner }}-team"
    data["_extensions"] = [*data.get("_extensions", []), "upgrade_test_ext.TeamFilter"]
    (template / "cookiecutter.json").write_text(json.dumps(data, indent=2) + "\n")
    edit(template / PROJECT / "README.md", lambda t: t + "\nTeam: {{ '' | team }}\n")
    commit_all(repo, "a team filter")
    bake(repo, "Iris Classifier", owner="vision")
    commit_all(repo, "bake")
    data["__team"] = "{{ cookiecutter.owner }}-squad"
    (template / "cookiecutter.json").write_text(json.dumps(data, indent=2) + "\n")
    commit_all(repo, "teams are squads")

    run(repo, "upgrade", "iris_classifier").assert_success()

    assert (repo / "models/iris_classifier/README.md").read_text().endswith("\nTeam: vision-squad\n")


# --- what an upgrade trusts (issue 20.5) ---------------------------------------------------------

EVIL_EXTENSION = """\
from pathlib import Path

from jinja2.ext import Extension

Path({marker!r}).write_text("the recorded template's code ran\\n")


class Evil(Extension):
    pass
"""


RECORD_OF_IRIS = f"models/iris_classifier/{logic.RECORD_FILE}"


def make_evil(template: Path, marker: Path) -> None:
    """A template whose Jinja extension writes ``marker`` when cookiecutter imports it (a fresh module
    name: a cached `local_extensions` would hide the import)."""
    (template / "upgrade_evil_ext.py").write_text(EVIL_EXTENSION.format(marker=str(marker)))
    data = json.loads((template / "cookiecutter.json").read_text())
    data["_extensions"] = [*data.get("_extensions", []), "upgrade_evil_ext.Evil"]
    (template / "cookiecutter.json").write_text(json.dumps(data, indent=2) + "\n")


def point_record_at(repo: Path, folder: Path, tree_id: str, commit: str) -> None:
    """The only visible change of the attack: new ids in the record."""
    data = record(folder)
    data.update(template_tree=tree_id, template_commit=commit)
    (folder / logic.RECORD_FILE).write_text(json.dumps(data, indent=2) + "\n")
    commit_all(repo, "record: a new template version")


def test_a_tree_committed_elsewhere_and_removed_again_is_never_baked(repo: Path, tmp_path: Path, run: Run) -> None:
    marker = tmp_path / "template-code-ran"
    shutil.copytree(repo / "cookiecutter-model", repo / "attack", ignore=IGNORE)
    make_evil(repo / "attack", marker)
    commit_all(repo, "a template that is not the template")
    evil_tree = git(repo, "rev-parse", "HEAD:attack").strip()
    evil_commit = git(repo, "rev-parse", "HEAD").strip()
    git(repo, "rm", "-q", "-r", "attack")
    git(repo, "commit", "-q", "-m", "and gone again")
    model = repo / "models/iris_classifier"
    point_record_at(repo, model, evil_tree, evil_commit)  # the commit is an ancestor; its template is not this tree

    for args in (("--check",), ()):
        result = run(repo, "upgrade", *args, "iris_classifier")
        assert not marker.exists(), "the recorded tree's code never ran"
        assert result.code == 1, result.out
        assert f"iris_classifier: error: {RECORD_OF_IRIS}: template_tree {evil_tree} was never" in result.out
        assert "modelctl upgrade --adopt --force --from REV iris_classifier" in result.out
    assert git(repo, "status", "--porcelain") == ""


def test_in_a_pull_request_a_template_committed_and_reverted_there_is_not_trusted(
    repo: Path, tmp_path: Path, run: Run
) -> None:
    """The pull request's own history holds the evil template (committed in cookiecutter-model/, then reverted):
    an ancestor of HEAD, so only `--trusted BASE` (what ci.yml passes) keeps its code from running."""
    marker = tmp_path / "template-code-ran"
    base = git(repo, "rev-parse", "HEAD").strip()
    git(repo, "checkout", "-q", "-b", "pull-request")
    make_evil(repo / "cookiecutter-model", marker)
    commit_all(repo, "an evil template")
    evil_tree, evil_commit = tree(repo), git(repo, "rev-parse", "HEAD").strip()
    git(repo, "revert", "--no-edit", "HEAD")
    point_record_at(repo, repo / "models/iris_classifier", evil_tree, evil_commit)

    refused = run(repo, "upgrade", "--check", "--trusted", base, "iris_classifier")
    assert not marker.exists(), "the pull request's template code never ran"
    assert refused.code == 1 and f"template_tree {evil_tree} was never" in refused.out
    assert f"the trusted revision {base}" in refused.out
    option = run(repo, "upgrade", "--check", "--trusted=--all", "iris_classifier")
    assert option.code == 2 and "expected a revision" in option.err, "an option is no revision"
    # The control: HEAD's history holds that commit, so without --trusted its template is baked (and runs).
    run(repo, "upgrade", "--check", "iris_classifier")
    assert marker.exists(), "the test can fail: the reverted template is in HEAD's history"


def test_a_template_from_an_unmerged_branch_is_never_baked(repo: Path, tmp_path: Path, run: Run) -> None:
    marker = tmp_path / "template-code-ran"
    git(repo, "checkout", "-q", "-b", "evil")
    make_evil(repo / "cookiecutter-model", marker)
    commit_all(repo, "an evil template, never merged")
    evil_tree, evil_commit = tree(repo), git(repo, "rev-parse", "HEAD").strip()
    git(repo, "checkout", "-q", "main")
    model = repo / "models/iris_classifier"
    point_record_at(repo, model, evil_tree, evil_commit)  # tree and commit agree, but not with HEAD's history

    result = run(repo, "upgrade", "--check", "iris_classifier")
    assert not marker.exists(), "the branch's template code never ran"
    assert result.code == 1 and f"template_tree {evil_tree} was never cookiecutter-model/ in HEAD's" in result.out
    adopt = run(repo, "upgrade", "--adopt", "--force", "--from", "evil", "iris_classifier")
    assert not marker.exists(), "adopting from it does not run it either"
    assert adopt.code == 2 and "is not an ancestor of HEAD" in adopt.err + adopt.out
    assert git(repo, "status", "--porcelain") == ""


def test_a_template_version_only_a_merged_branch_had_is_accepted(repo: Path, run: Run) -> None:
    """The hook records the template as it was on disk and the commit before it; the branch that committed
    that version is an ancestor only through a merge that kept main's template (found with --full-history)."""
    git(repo, "checkout", "-q", "-b", "feature")
    line = "\n# the feature branch's template change\n"
    edit(repo / "cookiecutter-model" / PROJECT / "locustfile.py", lambda t: t + line)
    folder = bake(repo, "Wine Classifier", "xgboost")
    commit_all(repo, "a template change and a model baked from it before it was committed")
    baked = record(folder)
    assert baked["template_tree"] == tree(repo) != tree(repo, "HEAD~1")
    assert baked["template_commit"] == git(repo, "rev-parse", "HEAD~1").strip()
    git(repo, "checkout", "-q", "main")
    git(repo, "merge", "-q", "--no-ff", "--no-commit", "feature")
    git(repo, "checkout", "main", "--", "cookiecutter-model")
    git(repo, "commit", "-q", "-m", "merge the model, not the template change")
    assert tree(repo) == tree(repo, "HEAD^1") != baked["template_tree"]

    result = run(repo, "upgrade", "wine_classifier").assert_success()

    assert re.search(r"update\s+locustfile.py", result.out)
    assert line not in (folder / "locustfile.py").read_text(), "main's template wins"
    assert record(folder)["template_tree"] == tree(repo)


def test_a_symlink_out_of_the_model_folder_is_refused_and_nothing_is_written(
    repo: Path, tmp_path: Path, run: Run
) -> None:
    model = repo / "models/iris_classifier"
    outside = tmp_path / "team-queries"
    shutil.move(model / "queries", outside)
    (model / "queries").symlink_to(outside, target_is_directory=True)
    commit_all(repo, "queries kept in another team's folder")
    template = repo / "cookiecutter-model" / PROJECT
    edit(template / "queries/training.sql", lambda t: t + "-- template fix\n")
    (template / "queries/features.sql").write_text("SELECT 1\n")
    change_template(repo)
    before, outside_before = snapshot(model), snapshot(outside)

    for args in ((), ("--check",)):
        result = run(repo, "upgrade", *args, "iris_classifier")
        assert snapshot(outside) == outside_before, "nothing written outside the model"
        assert snapshot(model) == before, "nor inside it: not even the record"
        assert result.code == 1, result.out
        assert f"models/iris_classifier/queries/features.sql resolves to {outside.resolve()}/features.sql" in result.out
        assert "outside the model folder" in result.out and "nothing was changed" in result.out
    assert git(repo, "status", "--porcelain") == ""


# --- adopting, repository layout, environment --------------------------------------------------


def test_adopt_a_model_baked_before_records_then_upgrade(repo: Path, run: Run) -> None:
    model = repo / "models/iris_classifier"
    expected = record(model)
    (model / logic.RECORD_FILE).unlink()
    edit(model / "train.py", lambda t: t + "\n# the model's own line\n")
    commit_all(repo, "a model from before records")
    baked_at = git(repo, "rev-parse", "HEAD~1").strip()
    change_template(repo)

    missing = run(repo, "upgrade", "iris_classifier")
    assert missing.code == 1 and "adopt it: modelctl upgrade --adopt --from REV iris_classifier" in missing.out

    adopted = run(repo, "upgrade", "--adopt", "--from", baked_at, "iris_classifier").assert_success()

    data = record(model)
    assert data["template_tree"] == expected["template_tree"] and data["answers"] == expected["answers"]
    assert data["template_commit"] == baked_at
    files = len(snapshot(model)) - 1
    assert f"{files - 1} of {files} template files are as a bake of {baked_at}" in adopted.out
    assert re.search(r"differs\s+train.py", adopted.out), "the model's own edits are shown"
    edit_model(model)
    commit_all(repo, "adopt, and more edits")
    run(repo, "upgrade", "iris_classifier").assert_success()
    assert (model / "service.py").read_text().endswith("# template fix: every model gets this line\n")
    assert "def model_team_helper() -> int:" in (model / "train.py").read_text()

    again = run(repo, "upgrade", "--adopt", "--from", baked_at, "iris_classifier")
    assert again.code == 1 and "exists already (--force replaces it)" in again.out


def test_works_below_a_git_repository_that_holds_more_than_the_monorepo(tmp_path: Path, run: Run) -> None:
    outer = tmp_path / "company"
    outer.mkdir()
    git(outer, "init", "-q", "-b", "main")
    (outer / "README.md").write_text("other projects live here too\n")
    repo = make_monorepo(outer / "platform", init=False)
    bake(repo, "Iris Classifier")
    commit_all(repo, "bake")
    change_template(repo)
    model = repo / "models/iris_classifier"
    edit_model(model)
    commit_all(repo, "changes")
    assert (outer / ".git").is_dir() and not (repo / ".git").exists()

    run(model / "tests", "upgrade", "--all").assert_success()

    assert (model / "service.py").read_text().endswith("# template fix: every model gets this line\n")
    assert record(model)["template_tree"] == git(outer, "rev-parse", "HEAD:platform/cookiecutter-model").strip()
    edit(model / "train.py", lambda t: t + "# dirty\n")
    change = repo / "cookiecutter-model" / PROJECT / "locustfile.py"
    edit(change, lambda t: t + "\n# another fix\n")
    commit_all(repo, "another fix")
    edit(model / "train.py", lambda t: t + "# dirty again\n")
    assert "refused (dirty)" in run(repo, "upgrade", "iris_classifier").out, "dirty paths map through the prefix"


def test_no_machine_git_config_no_identity_and_no_writes_to_home(repo: Path, tmp_path: Path) -> None:
    change_template(repo)
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "MODELCTL_"))}
    env.update({"GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1", "HOME": str(home)})
    result = subprocess.run(
        [sys.executable, "-m", "modelctl.main", "upgrade", "--all"],
        cwd=repo / "models",
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "upgraded" in result.stdout
    assert list(home.iterdir()) == [], "no cookiecutter replay or config files in $HOME"


def test_a_failed_write_changes_nothing(repo: Path, run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    model = repo / "models/iris_classifier"
    change_template(repo)
    before = snapshot(model)
    real = Path.write_bytes
    calls = []

    def flaky(self: Path, data: bytes) -> int:
        if ".modelctl-upgrade-" in self.name:
            calls.append(self)
            if len(calls) == 2:
                raise OSError(28, "No space left on device")
        return real(self, data)

    monkeypatch.setattr(Path, "write_bytes", flaky)
    result = run(repo, "upgrade", "iris_classifier")

    assert result.code == 1 and "No space left on device" in result.out and "nothing was changed" in result.out
    assert snapshot(model) == before, "every file, the record included, is as it was; no temp files"


def test_bad_arguments_and_records(repo: Path, run: Run) -> None:
    assert run(repo, "upgrade").code == 2
    assert run(repo, "upgrade", "--all", "iris_classifier").code == 2
    assert run(repo, "upgrade", "--adopt", "iris_classifier").code == 2
    assert run(repo, "upgrade", "--from", "HEAD", "iris_classifier").code == 2
    assert run(repo, "upgrade", "nope").code == 2
    path = repo / "models/iris_classifier" / logic.RECORD_FILE
    path.write_text("[1, 2]")
    commit_all(repo, "broken record")
    broken = run(repo, "upgrade", "iris_classifier")
    assert broken.code == 1 and "expected a JSON object" in broken.out
    path.write_text(json.dumps({"template_tree": "f" * 40, "answers": {"model_slug": "iris_classifier"}}))
    commit_all(repo, "unknown tree")
    gone = run(repo, "upgrade", "iris_classifier")
    assert gone.code == 1 and "is not in this repository: a shallow clone" in gone.out


@pytest.mark.parametrize(
    ("source", "reads"),
    [
        (
            "{{ cookiecutter.model_slug }} {% if cookiecutter.framework == 'x' %}{% endif %}",
            {"model_slug", "framework"},
        ),
        ("{{ cookiecutter['owner'] }}", {"owner"}),
        ("no Jinja at all", set()),
        ("{{ cookiecutter[name] }}", None),  # None: the file may read any answer, so it is always re-baked
        ("{{ cookiecutter.get('owner') }}", None),
        ("{% for k, v in cookiecutter.items() %}{{ v }}{% endfor %}", None),
        ("{{ cookiecutter | tojson }}", None),
        ("{{ _cookiecutter.owner }}", None),
        ("{% set c = cookiecutter %}{{ c.owner }}", None),
        ("{{ unclosed", None),
    ],
)
def test_which_answers_a_template_file_reads(source: str, reads: set[str] | None) -> None:
    env = logic._cookiecutter("utils").create_env_with_context({"cookiecutter": {}})
    assert logic._answers_read(env, source) == (None if reads is None else frozenset(reads))


def test_answers_are_taken_literally(repo: Path) -> None:
    context = logic.render_context(repo / "cookiecutter-model", {"description": "{{ 7*191 }}", "model_name": "X Y"})
    assert context["cookiecutter"]["description"] == "{{ 7*191 }}"
    assert context["cookiecutter"]["model_slug"] == "x_y", "questions without answers get their default"


# --- the real thing ----------------------------------------------------------------------------


def test_the_template_hook_record_if_the_hook_writes_one(tmp_path: Path) -> None:
    repo = make_monorepo(tmp_path / "repo")
    from cookiecutter.main import cookiecutter

    rc = tmp_path / "rc.yaml"
    rc.write_text(f"replay_dir: {tmp_path / 'replay'}\n")
    folder = Path(
        cookiecutter(
            str(repo / "cookiecutter-model"), output_dir=str(repo / "models"), no_input=True, config_file=str(rc)
        )
    )
    assert (folder / logic.RECORD_FILE).exists(), "the template's post-gen hook writes .template.json"
    data = record(folder)
    assert data["template"] == "cookiecutter-model" and data["template_tree"] == tree(repo)
    answers = data["answers"]
    assert isinstance(answers, dict) and answers["model_slug"] == folder.name


@pytest.mark.slow
def test_the_upgraded_model_passes_its_own_tests(repo: Path, run: Run) -> None:
    model = repo / "models/iris_classifier"
    change_template(repo)
    edit_model(model)
    commit_all(repo, "changes")
    run(repo, "upgrade", "iris_classifier").assert_success()

    env = {k: v for k, v in os.environ.items() if not k.startswith(("TOX_", "VIRTUAL_ENV"))}
    result = subprocess.run(
        [sys.executable, "-m", "tox", "run", "-e", "model-iris_classifier"],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


def test_an_answer_missing_from_the_record_comes_from_the_models_config_not_the_default(repo: Path, run: Run) -> None:
    folder = bake(repo, "Churn Predictor", framework="lightgbm", task="regression")
    data = json.loads((folder / logic.RECORD_FILE).read_text())
    del data["answers"]["task"]  # an older template did not ask, or the record was edited
    (folder / logic.RECORD_FILE).write_text(json.dumps(data, indent=2) + "\n")
    commit_all(repo, "model without a recorded task")
    change_template(repo)
    run(repo, "upgrade", "churn_predictor").assert_success()
    assert record(folder)["answers"]["task"] == "regression", "the model's own task, from config.yaml"  # type: ignore[index]
    assert "CLASS_NAMES" not in (folder / "service.py").read_text(), "still a regressor's service"
