"""Airflow DAG factory: one DAG `retrain_<model>` per model that has a `retrain.schedule`.

Optional (`pip install 'modelctl[airflow]'`, Airflow 3.3): nothing else in the platform needs Airflow.
Tasks: monitor -> extract -> train -> evaluate -> decide (branch) -> deploy_trigger | skip -> notify -> cleanup;
an entity model (`input: entity`, issue 21) has `features` between monitor and extract: the shared feature store
applied and its online store loaded (`modelctl features materialize`), so the candidate is scored and served on
current features.
monitor (issue 22) judges drift and quality of the live version and alerts on drift or a breach; with
`monitor.retrain_on_drift` the run goes on only then (a monitor that cannot run never holds a retrain back). Each
other task calls the same retraining steps as `modelctl retrain` in CI (modelctl.delivery.retrain): the champion is
fetched from the state store when this worker does not have it, and a better candidate is shipped as the CLI ships
it: its bento is stored in the (shared) state store and deploy.yml is dispatched with that bento, which gates and
deploys exactly it. The champion is the one live in staging, as for `modelctl retrain`; trigger with conf
{"env": "production"} to compare against production instead.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from modelctl.delivery import retrain as steps
from modelctl.delivery.release import in_ci
from modelctl.model import Model
from modelctl.repo import Repo
from modelctl.state import State
from modelkit import ENVIRONMENTS


def build_dags(root: Path) -> dict[str, Any]:
    """``{"retrain_<model>": DAG}`` for every model of the monorepo at ``root`` with a schedule."""
    repo = Repo(root)
    dags: dict[str, Any] = {}
    for model in repo.models():
        schedule = model.config.retrain.schedule
        if schedule is not None:
            dags[f"retrain_{model.name}"] = retrain_dag(model, schedule)
    return dags


def retrain_dag(model: Model, schedule: str) -> Any:
    from airflow.sdk import Param, TriggerRule, dag, get_current_context, task

    name = model.name

    def on_failure(context: dict[str, Any]) -> None:
        exception = context.get("exception")
        step, reason = (
            (exception.step, exception.reason)
            if isinstance(exception, steps.StepError)
            else (context["task_instance"].task_id, str(exception))
        )
        record = {"model": name, "env": context["params"]["env"], "run_id": context["run_id"]}
        steps.failed(model, context["params"]["env"], record, step, reason)  # logged and alerted, as the CLI does

    @dag(
        dag_id=f"retrain_{name}",
        schedule=schedule,
        start_date=datetime(2026, 1, 1, tzinfo=UTC),
        catchup=False,
        max_active_runs=1,
        tags=["modelctl", "retrain", name],
        params={"env": Param(steps.DEFAULT_ENV, enum=list(ENVIRONMENTS))},
        default_args={"retries": 0, "on_failure_callback": on_failure},
        doc_md=__doc__,
    )
    def retrain() -> None:
        @task.short_circuit(ignore_downstream_trigger_rules=True)
        def monitor() -> bool:
            from modelctl.monitor.loop import before_retrain

            return before_retrain(model, get_current_context()["params"]["env"])

        @task
        def features() -> None:
            from modelctl.features import materialize

            materialize(model.repo.root, State.of(model.repo).root)

        @task
        def extract() -> str:
            steps.require_shared_store(model)  # deploy.yml can only pull the winner from there
            if in_ci():
                steps.require_data(model)
            folder = steps.open_run_folder(model, get_current_context()["run_id"])
            steps.extract(model, folder)
            return str(folder)

        @task
        def train(folder: str) -> str:
            return steps.train_candidate(model, Path(folder))

        @task
        def evaluate(folder: str, candidate: str) -> dict[str, Any]:
            env = get_current_context()["params"]["env"]
            return steps.evaluate(model, Path(folder), candidate, steps.champion_in_store(model, env))

        @task.branch
        def decide(evaluation: dict[str, Any]) -> str:
            return "deploy_trigger" if evaluation["promote"] else "skip"

        @task
        def deploy_trigger(evaluation: dict[str, Any]) -> dict[str, Any]:
            shipped: dict[str, Any] = {}
            steps.ship_winner(model, evaluation["candidate"], shipped)
            return shipped

        @task
        def skip() -> None:
            return None

        @task(trigger_rule=TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS)
        def notify(evaluation: dict[str, Any]) -> str:
            context = get_current_context()
            env = context["params"]["env"]
            shipped = context["ti"].xcom_pull(task_ids="deploy_trigger") or {}
            decision = str(shipped.get("decision") or "kept champion")
            State.of(model.repo).retrain_log.append(
                name,
                {
                    "model": name,
                    "env": env,
                    "run_id": context["run_id"],
                    "decision": decision,
                    "metric": model.config.retrain.metric,
                    **{
                        k: evaluation.get(k)
                        for k in ("candidate", "champion", "candidate_metrics", "champion_metrics", "reason")
                    },
                    **shipped,
                },
            )
            steps.announce(model, env, evaluation, decision)
            return decision

        @task(trigger_rule=TriggerRule.ALL_DONE)
        def cleanup() -> None:
            """The extracted training data never outlives the run, whatever happened to the other tasks."""
            steps.remove_run_folder(steps.run_folder_path(model, get_current_context()["run_id"]))

        folder = extract()
        if model.config.input == "entity":
            monitor() >> features() >> folder
        else:
            monitor() >> folder
        evaluation = evaluate(folder, train(folder))
        trigger, skipped = deploy_trigger(evaluation), skip()
        decide(evaluation) >> [trigger, skipped]
        notified = notify(evaluation)
        [trigger, skipped] >> notified
        [folder, notified] >> cleanup()

    return retrain()
