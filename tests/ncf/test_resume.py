"""Training resumes from its last epoch state; a diverging loss stops it with a clear error."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from neo_ml.commands.train_ncf import main
from neo_ml.data.splits import leave_one_out_split
from neo_ml.errors import CheckpointError, TrainingDivergedError
from neo_ml.files import checksum_path
from neo_ml.ncf.config import NCFConfig
from neo_ml.ncf.run import training_state_path
from neo_ml.ncf.train import train_ncf_model

CONFIG = dict(architecture="neumf", embedding_dim=8, hidden_layers=[8], batch_size=128, history_length=2, patience=10,
              seed=3)


@pytest.fixture(scope="module")
def small_split(synthetic_frame):
    return leave_one_out_split(synthetic_frame.head(2000), seed=1)


def _same_weights(a, b):
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True))


SEQUENCE_CONFIG = dict(architecture="sasrec", embedding_dim=8, history_length=6, batch_size=32, patience=4,
                       seed=3)  # dropout 0.2 by default: the resumed run must restore the random state too


@pytest.mark.parametrize("config", [CONFIG, SEQUENCE_CONFIG], ids=["pointwise", "sequence"])
def test_a_resumed_run_ends_exactly_like_an_uninterrupted_one(small_split, tmp_path, config):
    straight = train_ncf_model(small_split, NCFConfig(epochs=4, **config), progress=False)
    state = tmp_path / "run.state.pt"
    first = train_ncf_model(small_split, NCFConfig(epochs=2, **config), progress=False, state_path=state,
                            fingerprint="data")  # stands for a run stopped after epoch 2
    assert len(first.history) == 2 and checksum_path(state).is_file()
    resumed = train_ncf_model(small_split, NCFConfig(epochs=4, **config), progress=False, state_path=state,
                              resume=True, fingerprint="data")
    assert [row["train_loss"] for row in resumed.history] == [row["train_loss"] for row in straight.history]
    assert resumed.best_epoch == straight.best_epoch and _same_weights(resumed.model, straight.model)


def test_resume_refuses_another_configuration_other_data_or_no_state(small_split, tmp_path):
    state = tmp_path / "run.state.pt"
    train_ncf_model(small_split, NCFConfig(epochs=1, **CONFIG), progress=False, state_path=state, fingerprint="a")
    with pytest.raises(CheckpointError, match=r"configuration differs in \['learning_rate'\]"):
        train_ncf_model(small_split, NCFConfig(epochs=2, **CONFIG, learning_rate=0.1), progress=False,
                        state_path=state, resume=True, fingerprint="a")
    with pytest.raises(CheckpointError, match="training data differ"):
        train_ncf_model(small_split, NCFConfig(epochs=2, **CONFIG), progress=False, state_path=state,
                        resume=True, fingerprint="b")
    with pytest.raises(CheckpointError, match="no training state to resume from"):
        train_ncf_model(small_split, NCFConfig(epochs=2, **CONFIG), progress=False,
                        state_path=tmp_path / "none.pt", resume=True)


def test_a_nan_loss_stops_training_with_the_epoch_and_batch_named(small_split, monkeypatch, tmp_path):
    import neo_ml.ncf.train as train

    class DivergesAtEpoch2Batch3(torch.nn.BCEWithLogitsLoss):
        calls = 0

        def forward(self, logits, labels):
            DivergesAtEpoch2Batch3.calls += 1
            loss = super().forward(logits, labels)
            return loss * float("nan") if DivergesAtEpoch2Batch3.calls == batches + 3 else loss

    batches = -(-len(small_split.train) // train.positives_per_batch(NCFConfig(**CONFIG)))
    monkeypatch.setattr(train.nn, "BCEWithLogitsLoss", DivergesAtEpoch2Batch3)
    state = tmp_path / "run.state.pt"
    with pytest.raises(TrainingDivergedError, match=r"epoch 2, batch 3: the training loss is nan; stopped\. "
                                                    r"Lower the learning rate .* the state after epoch 1 is in"):
        train_ncf_model(small_split, NCFConfig(epochs=3, **CONFIG), progress=False, state_path=state)
    assert torch.load(state, weights_only=True)["epoch"] == 1


def test_the_command_resumes_after_sigkill_and_removes_its_state(synthetic_json, tmp_path, capsys):
    """Kill ``train_ncf`` after its second epoch state is written, then finish it with --resume."""
    output = tmp_path / "ncf.pt"
    args = ["--data", str(synthetic_json), "--output", str(output), "--epochs", "6", "--patience", "10",
            "--embedding-dim", "8", "--hidden-layers", "8", "--batch-size", "512", "--no-progress"]
    state = training_state_path(output)
    process = subprocess.Popen([sys.executable, "-m", "neo_ml.train_ncf", *args], stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": os.getcwd()})
    deadline = time.monotonic() + 300
    while not (state.is_file() and torch.load(state, weights_only=True)["epoch"] >= 2):
        assert process.poll() is None and time.monotonic() < deadline, process.stderr.read()
        time.sleep(0.2)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert not output.exists()
    epochs_done = torch.load(state, weights_only=True)["epoch"]
    assert main([*args, "--resume"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    saved = torch.load(output, weights_only=True)
    assert len(saved["training_history"]) == 6 and epochs_done < 6 and result["best_epoch"] >= 1
    assert not state.exists() and not checksum_path(state).exists()


def test_on_epoch_sees_every_validated_epoch_and_can_stop_training(small_split):
    """The hook a tuning trial's pruner uses: one call per epoch after validation; raising ends the run."""
    seen = []
    train_ncf_model(small_split, NCFConfig(epochs=3, **CONFIG), progress=False, on_epoch=seen.append)
    assert [record["epoch"] for record in seen] == [1, 2, 3] and all("val_ndcg@10" in r for r in seen)

    class Pruned(Exception):
        pass

    def prune_after_first(record):
        if record["epoch"] == 1:
            raise Pruned

    with pytest.raises(Pruned):
        train_ncf_model(small_split, NCFConfig(epochs=3, **CONFIG), progress=False, on_epoch=prune_after_first)
