"""`modelkit.read_yaml`: any YAML file read as a model config is, with messages that name the file, not a config."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from modelkit import ConfigError, parse_config, read_yaml


def read_in_subprocess(text: str, file: str, timeout: float = 60) -> list[str]:
    """read_yaml(text, file) in a fresh interpreter, killed after ``timeout`` s: the time bound is the harness's."""
    script = (
        "import json, sys\n"
        "from modelkit import ConfigError, read_yaml\n"
        "try:\n"
        f"    read_yaml(sys.stdin.read(), {file!r})\n"
        "except ConfigError as exc:\n"
        "    print(json.dumps([str(p) for p in exc.problems]))\n"
        "else:\n"
        "    print('[]')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], input=text, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return list(json.loads(result.stdout))


def merge_key_bomb(levels: int) -> str:
    """Under 500 bytes at 8 levels, and 46 s and 820 MB for ``yaml.safe_load`` (PyYAML 6.0.3, issue 20 item 12)."""
    lines = ["a0: &a0 {k: v}"]
    lines += [f"a{i}: &a{i} {{<<: [{', '.join([f'*a{i - 1}'] * 9)}]}}" for i in range(1, levels + 1)]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "apiVersion: v1\nclusters:\n- name: c\n  cluster: {server: 'https://k:6443'}\n",
            {"apiVersion": "v1", "clusters": [{"name": "c", "cluster": {"server": "https://k:6443"}}]},
        ),
        ("- 1\n- two\n- {three: 3.0}\n", [1, "two", {"three": 3.0}]),
        ("just text\n", "just text"),
        ("", None),
        ("# only a comment\n", None),
    ],
    ids=["mapping", "list", "scalar", "empty", "comment"],
)
def test_any_document_is_read_as_plain_data(text: str, expected: object) -> None:
    assert read_yaml(text, "kubeconfig") == expected


@pytest.mark.parametrize(
    ("text", "line", "what"),
    [
        ("a: &shared {x: 1}\nb: 2\n", 1, "anchor &shared"),
        ("a: 1\nb: *shared\n", 2, "alias *shared"),
        ("a: &a [*a]\n", 1, "anchor &a"),
        ("base: {x: 1}\nother:\n  <<: *base\n", 3, "alias *base"),
    ],
    ids=["anchor", "alias", "cycle", "merge-key"],
)
def test_anchors_and_aliases_are_refused_naming_file_and_line_in_neutral_words(text: str, line: int, what: str) -> None:
    with pytest.raises(ConfigError) as info:
        read_yaml(text, "/home/me/.kube/config")
    (problem,) = info.value.problems
    assert (problem.file, problem.line) == ("/home/me/.kube/config", line)
    assert str(problem).startswith(f"/home/me/.kube/config:{line}: YAML {what} is not allowed in this file; ")
    assert "write the value out in full" in str(problem)
    assert "model config" not in str(problem), "a kubeconfig or a bento.yaml is not a model config"


def test_a_config_is_still_told_it_is_a_model_config() -> None:
    with pytest.raises(ConfigError, match="YAML anchor &a is not allowed in a model config; "):
        parse_config("name: churn\nx: &a 1\n", "models/churn/config.yaml")


def test_a_merge_key_bomb_is_refused_at_once() -> None:
    text = merge_key_bomb(8)
    assert len(text) < 600
    (found,) = read_in_subprocess(text, "bento.yaml", timeout=20)
    assert found.startswith("bento.yaml:1: YAML anchor &a0 is not allowed in this file"), found


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        ("a: [1, 2\nb: 3\n", 2, "invalid YAML"),
        ("x: !!python/object/apply:os.system ['true']\n", 1, "invalid YAML"),
        ("x: " + "[" * 5000 + "]" * 5000 + "\n", 1, ""),
    ],
    ids=["syntax", "python-tag", "deep-nesting"],
)
def test_unreadable_yaml_is_a_problem_naming_file_and_line(text: str, line: int, reason: str) -> None:
    try:
        read_yaml(text, "bento.yaml")
    except ConfigError as exc:
        (problem,) = exc.problems
        assert problem.file == "bento.yaml" and problem.line == line and reason in problem.message, str(problem)
    else:  # PyYAML 6.0.3 reads 5000 nested lists; 6.0.4 stops at its nesting limit
        assert reason == "", "only deep nesting may be read"
