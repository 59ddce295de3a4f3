"""`modelctl changed` on real git repositories built in temp folders."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelctl.changes import matches
from modelctl.changeset import compute
from modelctl.repo import Repo
from tests.conftest import Cli, git

ZERO = "0" * 40


def config(name: str, extra: str = "") -> str:
    return f"name: {name}\ndescription: d\nowner: o\nframework: sklearn\n{extra}"


def write(repo: Path, files: dict[str, str]) -> None:
    for path, text in files.items():
        (repo / path).parent.mkdir(parents=True, exist_ok=True)
        (repo / path).write_text(text)


def commit_all(repo: Path, message: str = "change") -> str:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "--allow-empty", "-m", message)
    return git(repo, "rev-parse", "HEAD").strip()


@pytest.fixture
def small_repo(tmp_path: Path) -> Path:
    """Four models: alpha and beta use shared/, gamma does not, delta has extra paths and custom ignores."""
    repo = tmp_path / "mono"
    files = {
        "cookiecutter-model/cookiecutter.json": "{}",
        "shared/src/modelkit/__init__.py": "",
        "tooling/src/modelctl/x.py": "",
        "tox.ini": "[tox]\n",
        "pyproject.toml": (
            '[tool.modelctl]\nrepo_wide_paths = ["tooling/", "tox.ini", "pyproject.toml", ".github/workflows/"]\n'
        ),
        "docs/guide.md": "",
        "data/features/spec.csv": "a,b\n",
    }
    for name in ("alpha", "beta", "gamma", "delta"):
        files[f"models/{name}/train.py"] = ""
        files[f"models/{name}/README.md"] = ""
        files[f"models/{name}/notebooks/explore.ipynb"] = "{}"
        files[f"models/{name}/requirements.txt"] = "bentoml==1.4.40\n" + (
            "" if name == "gamma" else "-e ../../shared\n"
        )
        files[f"models/{name}/config.yaml"] = config(name)
    files["models/delta/config.yaml"] = config(
        "delta", "ci:\n  ignore: ['docs/**']\n  extra_paths: ['data/features/**']\n"
    )
    files["models/delta/docs/card.txt"] = ""
    repo.mkdir()
    write(repo, files)
    git(repo, "init", "-q", "-b", "main")
    commit_all(repo, "initial")
    return repo


def selected(repo: Path, base: str, head: str = "HEAD") -> list[str]:
    return compute(Repo(repo), base, head).models


def change(repo: Path, *paths: str) -> tuple[str, str]:
    base = git(repo, "rev-parse", "HEAD").strip()
    for path in paths:
        target = repo / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text((target.read_text() if target.exists() else "") + "# changed\n")
    return base, commit_all(repo)


@pytest.mark.parametrize(
    ("paths", "expected"),
    [
        (["models/alpha/train.py"], ["alpha"]),
        (["models/alpha/notebooks/explore.ipynb"], []),
        (["models/alpha/README.md", "models/beta/notebooks/explore.ipynb"], []),
        (["models/alpha/README.md", "models/alpha/train.py"], ["alpha"]),
        (["shared/src/modelkit/__init__.py"], ["alpha", "beta", "delta"]),
        (["tooling/src/modelctl/x.py"], ["alpha", "beta", "delta", "gamma"]),
        (["tox.ini"], ["alpha", "beta", "delta", "gamma"]),
        ([".github/workflows/ci.yml"], ["alpha", "beta", "delta", "gamma"]),
        (["cookiecutter-model/cookiecutter.json"], []),
        (["docs/guide.md"], []),
        (["data/features/spec.csv"], ["delta"]),
        (["models/delta/docs/card.txt"], []),
        (["models/delta/README.md"], ["delta"]),  # delta's own ignore list replaces the default
    ],
)
def test_rules(small_repo: Path, paths: list[str], expected: list[str]) -> None:
    base, head = change(small_repo, *paths)
    assert selected(small_repo, base, head) == expected


def test_template_change_selects_the_template_job_only(small_repo: Path) -> None:
    base, head = change(small_repo, "cookiecutter-model/cookiecutter.json")
    selection = compute(Repo(small_repo), base, head)
    assert selection.template is True and selection.models == []


@pytest.mark.parametrize(
    ("paths", "platform"),
    [
        (["models/alpha/train.py"], False),
        (["models/alpha/train.py", "models/beta/config.yaml", "docs/guide.md"], False),
        (["shared/src/modelkit/__init__.py"], True),
        (["tooling/src/modelctl/x.py"], True),
        (["cookiecutter-model/cookiecutter.json"], True),
        ([".github/workflows/ci.yml"], True),
        (["tox.ini"], True),
        (["Makefile"], True),
        (["tooling/requirements.lock"], True),
        (["models/alpha/train.py", ".pre-commit-config.yaml"], True),
    ],
)
def test_platform_suites_run_only_when_the_platform_changed(small_repo: Path, paths: list[str], platform: bool) -> None:
    """Issue 19: a pull request that touches only model folders skips the platform's own suites."""
    base, head = change(small_repo, *paths)
    selection = compute(Repo(small_repo), base, head)
    assert bool(selection.platform) is platform
    assert all(p in paths for p in selection.platform)


def test_platform_paths_are_configurable(small_repo: Path) -> None:
    pyproject = small_repo / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + 'platform_paths = ["docs/"]\n')
    commit_all(small_repo)
    base, head = change(small_repo, "docs/guide.md")
    assert compute(Repo(small_repo), base, head).platform == ["docs/guide.md"]
    base, head = change(small_repo, "Makefile")  # no longer a platform path; repo-wide ones always are
    assert compute(Repo(small_repo), base, head).platform == []
    base, head = change(small_repo, "tox.ini")
    assert compute(Repo(small_repo), base, head).platform == ["tox.ini"]


def test_unusable_base_runs_the_platform_too(small_repo: Path) -> None:
    selection = compute(Repo(small_repo), ZERO, "HEAD")
    assert selection.platform and selection.template and len(selection.models) == 4


def test_deleted_model_is_removed_not_built(small_repo: Path) -> None:
    base = git(small_repo, "rev-parse", "HEAD").strip()
    shutil.rmtree(small_repo / "models/gamma")
    commit_all(small_repo)
    selection = compute(Repo(small_repo), base, "HEAD")
    assert selection.removed == ["gamma"] and selection.models == []


def test_renamed_model_is_removed_and_built(small_repo: Path) -> None:
    base = git(small_repo, "rev-parse", "HEAD").strip()
    (small_repo / "models/gamma").rename(small_repo / "models/gamma2")
    (small_repo / "models/gamma2/config.yaml").write_text(config("gamma2"))
    commit_all(small_repo)
    selection = compute(Repo(small_repo), base, "HEAD")
    assert (selection.models, selection.removed) == (["gamma2"], ["gamma"])


def test_range_uses_the_merge_base(small_repo: Path) -> None:
    base = git(small_repo, "rev-parse", "HEAD").strip()
    git(small_repo, "checkout", "-q", "-b", "feature")
    change(small_repo, "models/alpha/train.py")
    git(small_repo, "checkout", "-q", "main")
    change(small_repo, "models/beta/train.py")  # main moved on; the PR did not touch beta
    assert selected(small_repo, "main", "feature") == ["alpha"]
    assert base


@pytest.mark.parametrize(
    ("base", "why"),
    [("", "no --base given"), (ZERO, "all zeros"), ("deadbeef" * 5, "not a known commit"), ("nope", "not a known")],
)
def test_unusable_base_selects_everything_and_says_why(
    small_repo: Path, base: str, why: str, capsys: pytest.CaptureFixture[str]
) -> None:
    selection = compute(Repo(small_repo), base, "HEAD")
    assert selection.models == ["alpha", "beta", "delta", "gamma"]
    assert why in capsys.readouterr().err
    assert all(why in reason for reason in selection.reasons().values())


def test_invalid_config_falls_back_to_default_rules(small_repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = git(small_repo, "rev-parse", "HEAD").strip()
    (small_repo / "models/alpha/config.yaml").write_text("name: [broken\n")
    commit_all(small_repo)
    assert selected(small_repo, base) == ["alpha"]
    assert "models/alpha/config.yaml" in capsys.readouterr().err


class TestCli:
    def test_lines_prints_only_names(self, cli: Cli, monorepo: Path) -> None:
        base = git(monorepo, "rev-parse", "HEAD").strip()
        path = monorepo / "models/iris_classifier/train.py"
        path.write_text(path.read_text() + "\n")
        commit_all(monorepo)
        result = cli("changed", "--base", base).assert_success()
        assert result.out == "iris_classifier\n"
        assert "iris_classifier: 1 file changed under models/iris_classifier/ (train.py)" in result.err

    def test_json(self, cli: Cli, monorepo: Path) -> None:
        base = git(monorepo, "rev-parse", "HEAD").strip()
        (monorepo / "cookiecutter-model/README.md").write_text("x\n")
        commit_all(monorepo)
        data = json.loads(cli("changed", "--base", base, "--format", "json").assert_success().out)
        assert data == {"models": [], "removed": [], "template": True, "platform": True, "reasons": {}, "detail": {}}

    def test_github_output(self, cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        output = tmp_path / "github_output"
        monkeypatch.setenv("GITHUB_OUTPUT", str(output))
        cli("changed", "--all", "--format", "github").assert_success()
        lines = dict(line.split("=", 1) for line in output.read_text().splitlines())
        assert json.loads(lines["matrix"]) == {"include": [{"shard": "iris_classifier", "models": "iris_classifier"}]}
        assert (
            lines["count"] == "1" and lines["model_count"] == "1" and json.loads(lines["models"]) == ["iris_classifier"]
        )
        assert lines["removed"] == "[]" and lines["removed_count"] == "0" and lines["template"] == "false"
        assert lines["platform"] == "true"  # --all checks everything

    def test_github_output_of_a_model_only_change(
        self, cli: Cli, monorepo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        output = tmp_path / "github_output"
        monkeypatch.setenv("GITHUB_OUTPUT", str(output))
        base = git(monorepo, "rev-parse", "HEAD").strip()
        path = monorepo / "models/iris_classifier/train.py"
        path.write_text(path.read_text() + "\n")
        commit_all(monorepo)
        result = cli("changed", "--base", base, "--format", "github").assert_success()
        lines = dict(line.split("=", 1) for line in output.read_text().splitlines())
        assert (lines["platform"], lines["template"], lines["count"]) == ("false", "false", "1")
        assert "platform: untouched" in result.err

    def test_tox_format_runs_the_platform_suites_only_when_it_changed(self, cli: Cli, monorepo: Path) -> None:
        """`make test-changed`: lint always, the platform's suites when the range touched it, the affected models."""
        base = git(monorepo, "rev-parse", "HEAD").strip()
        path = monorepo / "models/iris_classifier/train.py"
        path.write_text(path.read_text() + "\n")
        commit_all(monorepo)
        assert cli("changed", "--base", base, "--format", "tox").assert_success().out == "lint,model-iris_classifier\n"
        base = git(monorepo, "rev-parse", "HEAD").strip()
        (monorepo / "shared/src/modelkit/extra.py").write_text("X = 1\n")
        commit_all(monorepo)
        out = cli("changed", "--base", base, "--format", "tox").assert_success().out
        assert out == "lint,shared,tooling,template,airflow,model-iris_classifier\n"

    def test_github_without_output_file_is_usage_error(self, cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.delenv("GITHUB_OUTPUT", raising=False)
        assert cli("changed", "--all", "--format", "github").code == 2

    def test_models_option(self, cli: Cli) -> None:
        assert cli("changed", "--models", "iris_classifier").assert_success().out == "iris_classifier\n"
        result = cli("changed", "--models", "iris_classifier,ghost")
        assert result.code == 2 and "'ghost'" in result.err


def test_helpers() -> None:
    assert matches("README.md", "**/*.md") and matches("docs/a/b.md", "**/*.md")
    assert matches("notebooks/x.ipynb", "notebooks/**") and not matches("train.py", "notebooks/**")
    assert matches("tooling/a/b.py", "tooling/", anchored=True) and not matches("toolingx", "tooling/", anchored=True)
    assert matches("a/b/README.md", "*.md"), "an ignore pattern without a slash matches at any depth"
    assert not matches("models/x/tox.ini", "tox.ini", anchored=True), "repo-wide paths are anchored at the root"


def test_one_readable_reason_per_model_and_full_detail_in_json(
    small_repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = [f"models/alpha/file_{i:02d}.py" for i in range(14)] + ["shared/src/modelkit/__init__.py"]
    base, head = change(small_repo, *paths)
    selection = compute(Repo(small_repo), base, head)
    reason = selection.reason("alpha")
    assert reason == (
        "14 files changed under models/alpha/ (file_00.py, file_01.py, file_02.py, ...); "
        "uses shared/, where 1 file changed (shared/src/modelkit/__init__.py)"
    )
    assert len(selection.detail["alpha"]["own files"]) == 14
    assert selection.reason("beta") == "uses shared/, where 1 file changed (shared/src/modelkit/__init__.py)"


def test_a_pull_request_cannot_ignore_itself_with_its_own_rules(small_repo: Path) -> None:
    base = git(small_repo, "rev-parse", "HEAD").strip()
    (small_repo / "models/alpha/config.yaml").write_text(config("alpha", "ci:\n  ignore: ['**']\n"))
    (small_repo / "models/alpha/train.py").write_text("# a change the PR wants to hide\n")
    head = commit_all(small_repo)
    assert compute(Repo(small_repo), base, head).models == [], "with the head's rules it hides itself"
    assert compute(Repo(small_repo), base, head, rules_rev=base).models == ["alpha"], "the base's rules apply"


# --- property: the selection is exactly the models whose input files changed -------------------------------

# Every file a model's build reads, listed explicitly (not derived from the rules under test).
UNIVERSE = sorted(
    {
        "shared/src/modelkit/__init__.py",
        "tooling/src/modelctl/x.py",
        "tox.ini",
        "pyproject.toml",
        "docs/guide.md",
        "data/features/spec.csv",
        "cookiecutter-model/cookiecutter.json",
    }
    | {
        f"models/{m}/{f}"
        for m in ("alpha", "beta", "gamma", "delta")
        for f in ("train.py", "README.md", "notebooks/explore.ipynb", "requirements.txt")
    }
    | {"models/delta/docs/card.txt"}
)
REPO_WIDE_FILES = {"tooling/src/modelctl/x.py", "tox.ini", "pyproject.toml"}
INPUTS = {
    "alpha": {"models/alpha/train.py", "models/alpha/requirements.txt", "shared/src/modelkit/__init__.py"},
    "beta": {"models/beta/train.py", "models/beta/requirements.txt", "shared/src/modelkit/__init__.py"},
    "gamma": {"models/gamma/train.py", "models/gamma/requirements.txt"},
    "delta": {
        "models/delta/train.py",
        "models/delta/requirements.txt",
        "models/delta/README.md",
        "models/delta/notebooks/explore.ipynb",
        "shared/src/modelkit/__init__.py",
        "data/features/spec.csv",
    },
}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sets(st.sampled_from(UNIVERSE), min_size=1, max_size=6))
def test_selection_is_exactly_the_models_whose_inputs_changed(small_repo: Path, paths: set[str]) -> None:
    git(small_repo, "checkout", "-q", "main")
    git(small_repo, "checkout", "-q", "-B", "case", "main")
    base, head = change(small_repo, *sorted(paths))
    expected = sorted(m for m, inputs in INPUTS.items() if paths & (inputs | REPO_WIDE_FILES))
    assert selected(small_repo, base, head) == expected


def test_301_models_and_a_shared_change_fit_githubs_matrix_limit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = tmp_path / "big"
    files = {"cookiecutter-model/cookiecutter.json": "{}", "shared/src/modelkit/__init__.py": "", "pyproject.toml": ""}
    names = [f"model_{i:03d}" for i in range(301)]
    for name in names:
        files[f"models/{name}/config.yaml"] = config(name)
        files[f"models/{name}/requirements.txt"] = "bentoml==1.4.40\n-e ../../shared\n"
    repo.mkdir()
    write(repo, files)
    git(repo, "init", "-q", "-b", "main")
    base = commit_all(repo, "301 models")
    (repo / "shared/src/modelkit/__init__.py").write_text("x = 1\n")
    commit_all(repo, "one line in shared/")
    output = tmp_path / "github_output"
    monkeypatch.setenv("GITHUB_OUTPUT", str(output))
    monkeypatch.chdir(repo)
    from modelctl.main import main

    capsys.readouterr()
    assert main(["changed", "--base", base, "--format", "github"]) == 0
    lines = dict(line.split("=", 1) for line in output.read_text().splitlines())
    jobs = json.loads(lines["matrix"])["include"]
    assert len(jobs) <= 256 and lines["count"] == str(len(jobs)) and lines["model_count"] == "301"
    listed = [m for job in jobs for m in job["models"].split(",")]
    assert sorted(listed) == names and len(set(listed)) == 301, "every model in exactly one job"
    assert len({job["shard"] for job in jobs}) == len(jobs)
    assert "301 model(s) in 256 job(s) (limit 256)" in capsys.readouterr().err


# --- selection against what is deployed (issue 13: lost or reordered deploys) ----------------------------------


def deployed_at(repo: Path, model: str, commit: str, env: str = "staging") -> None:
    from modelctl.ledger import Record
    from modelctl.state import State

    State.of(Repo(repo)).ledger.append(
        Record(model=model, env=env, target="local", outcome="deployed", bento=f"{model}:v", git_commit=commit)
    )


def test_since_deployed_picks_up_what_a_cancelled_run_never_deployed(small_repo: Path) -> None:
    from modelctl.changeset import since_deployed

    first = git(small_repo, "rev-parse", "HEAD").strip()
    for name in ("alpha", "beta", "gamma", "delta"):
        deployed_at(small_repo, name, first)
    assert since_deployed(Repo(small_repo), "staging").models == [], "everything is deployed at HEAD"
    change(small_repo, "models/alpha/train.py")  # this push's deploy was cancelled
    _, head = change(small_repo, "models/beta/train.py")  # the next push changes only beta
    selection = since_deployed(Repo(small_repo), "staging")
    assert selection.models == ["alpha", "beta"]
    assert selection.reason("alpha").startswith(f"since staging deploy {first[:12]}: 1 file changed under")
    deployed_at(small_repo, "alpha", head)
    assert since_deployed(Repo(small_repo), "staging").models == ["beta"]
    assert since_deployed(Repo(small_repo), "production").models == ["alpha", "beta", "delta", "gamma"]
    assert since_deployed(Repo(small_repo), "production").reason("gamma") == "never deployed to production"


def test_since_deployed_reports_a_removed_live_model(small_repo: Path) -> None:
    from modelctl.changeset import since_deployed

    first = git(small_repo, "rev-parse", "HEAD").strip()
    deployed_at(small_repo, "gamma", first)
    shutil.rmtree(small_repo / "models/gamma")
    commit_all(small_repo)
    assert since_deployed(Repo(small_repo), "staging").removed == ["gamma"]


def test_since_deployed_without_a_shared_store_in_ci_falls_back_to_the_range(
    small_repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from modelctl.changeset import since_deployed

    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    base, head = change(small_repo, "models/delta/train.py")
    assert since_deployed(Repo(small_repo), "staging", fallback_base=base).models == ["delta"]
    assert "no shared state store (MODELCTL_STORE)" in capsys.readouterr().err
