"""Two tuning workers (real processes) share one Optuna study: N trials finished between them, none lost or
repeated, on SQLite and on PostgreSQL (conftest's ``postgres_server``: CI's, or a throwaway one)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import optuna
import pytest
from sqlalchemy import text

TRIALS = 6


@pytest.fixture
def storage(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'optuna.db'}"
        return
    admin = request.getfixturevalue("postgres_server")
    name = f"neo_ml_optuna_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    yield admin.url.set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


@pytest.mark.parametrize("storage", ["sqlite", "postgresql"], indirect=True)
def test_two_workers_finish_the_trials_between_them(storage, synthetic_json, tmp_path):
    optuna.create_study(study_name="shared", storage=storage, direction="maximize")  # both workers load it
    command = [sys.executable, "-m", "neo_ml.tune", "ncf", "--data", str(synthetic_json), "--trials", str(TRIALS),
               "--storage", storage, "--study-name", "shared", "--no-tracking", "--epochs", "2",
               "--item-text", "false", "--threads", "1"]
    env = {**os.environ, "NEO_ML_OUTPUTS_DIR": str(tmp_path / "outputs")}
    workers = [subprocess.Popen([*command, "--worker", str(number)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=env) for number in range(2)]
    for worker in workers:
        out, err = worker.communicate(timeout=600)
        assert worker.returncode == 0, err[-2000:]
    trials = optuna.load_study(study_name="shared", storage=storage).trials
    finished = [t for t in trials if t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)]
    assert len(finished) == len(trials)  # none left running or failed
    # Each worker stops once the study holds TRIALS; a worker mid-trial then may add one more.
    assert TRIALS <= len(trials) <= TRIALS + 1
    assert sorted(t.number for t in trials) == list(range(len(trials)))  # none lost, none numbered twice
    assert len({tuple(sorted(t.params.items())) for t in trials}) == len(trials)  # none repeated
