"""Airflow DAG factory: one DAG `retrain_<model>` per model that has a `retrain.schedule`.

Optional (`pip install 'modelctl[airflow]'`, Airflow 3.3): nothing else in the platform needs Airflow.
Tasks: extract -> train -> evaluate -> decide (branch) -> deploy_trigger | skip -> notify. Each calls the
same retraining steps as `modelctl retrain` (modelctl.retrain_steps); a better candidate is promoted by
dispatching deploy.yml, which gates and deploys it. Trigger with conf {"env": "staging"} to compare
against staging instead of production.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from modelctl import retrain_steps as steps
from modelctl.repo import Repo
from modelctl.retrain import dispatch_deploy
from modelctl.state import State


def build_dags(root: Path) -> dict[str, Any]:
    """``{"retrain_<model>": DAG}`` for every model of the monorepo at ``root`` with a schedule."""
    repo = Repo(root)
    dags: dict[str, Any] = {}
    for name in repo.model_names():
        schedule = repo.config(name).retrain.schedule
        if schedule is not None:
            dags[f"retrain_{name}"] = retrain_dag(repo, name, schedule)
    return dags


def retrain_dag(repo: Repo, model: str, schedule: str) -> Any:
    from airflow.sdk import Param, TriggerRule, dag, get_current_context, task

    def on_failure(context: dict[str, Any]) -> None:
        instance = context["task_instance"]
        steps.alert(repo, model, context["params"]["env"], instance.task_id, str(context.get("exception")))

    @dag(
        dag_id=f"retrain_{model}",
        schedule=schedule,
        start_date=datetime(2026, 1, 1, tzinfo=UTC),
        catchup=False,
        max_active_runs=1,
        tags=["modelctl", "retrain", model],
        params={"env": Param("production", enum=["staging", "production"])},
        default_args={"retries": 0, "on_failure_callback": on_failure},
        doc_md=__doc__,
    )
    def retrain() -> None:
        @task
        def extract() -> str:
            folder = steps.run_dir(repo, model, get_current_context()["run_id"])
            steps.extract(repo, model, folder)
            return str(folder)

        @task
        def train(folder: str) -> str:
            return steps.train_candidate(repo, model, Path(folder))

        @task
        def evaluate(folder: str, candidate: str) -> dict[str, Any]:
            env = get_current_context()["params"]["env"]
            return steps.evaluate(repo, model, Path(folder), candidate, steps.champion_of(repo, model, env))

        @task.branch
        def decide(evaluation: dict[str, Any]) -> str:
            return "deploy_trigger" if evaluation["promote"] else "skip"

        @task
        def deploy_trigger(evaluation: dict[str, Any]) -> str:
            return dispatch_deploy(model, evaluation["candidate"])

        @task
        def skip() -> None:
            return None

        @task(trigger_rule=TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS)
        def notify(evaluation: dict[str, Any]) -> str:
            context = get_current_context()
            env = context["params"]["env"]
            dispatched = context["ti"].xcom_pull(task_ids="deploy_trigger")
            decision = "promoted: deploy.yml dispatched" if dispatched else "kept champion"
            State.of(repo).retrain_log.append(
                model,
                {
                    "model": model,
                    "env": env,
                    "run_id": context["run_id"],
                    "decision": decision,
                    **{
                        k: evaluation.get(k)
                        for k in ("candidate", "champion", "candidate_metrics", "champion_metrics", "reason")
                    },
                },
            )
            steps.announce(repo, model, env, evaluation, decision)
            return decision

        folder = extract()
        evaluation = evaluate(folder, train(folder))
        trigger, skipped = deploy_trigger(evaluation), skip()
        decide(evaluation) >> [trigger, skipped]
        [trigger, skipped] >> notify(evaluation)

    return retrain()
