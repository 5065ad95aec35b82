"""A writer killed with SIGKILL at any moment of a save leaves a whole, loadable checkpoint.

A forked child saves new versions of a checkpoint in a loop and reports
"start n" / "done n" on a pipe; the parent kills it at a random moment, reads
which step it was in, and loads the checkpoint. Only kills that landed inside
a save count, and at least ``KILLS`` of them must happen for each format.
"""

import multiprocessing
import os
import signal
import time

import numpy as np
import torch

from neo_ml.classification.checkpoint import load_classifier, save_classifier
from neo_ml.files import write_json
from neo_ml.ncf.checkpoint import load_ncf_checkpoint, save_ncf_checkpoint

KILLS = 20
FORK = multiprocessing.get_context("fork")


def _save_forever(save, connection):
    version = 1
    while True:
        connection.send(("start", version))
        save(version)
        connection.send(("done", version))
        version += 1


def _kill_during_saves(save, load, seconds_per_save: float) -> dict:
    """SIGKILL the saving child until KILLS kills landed mid-save; after each, ``load()`` must work."""
    rng = np.random.default_rng(0)
    landed, tries, versions = 0, 0, set()
    while landed < KILLS:
        tries += 1
        assert tries <= 4 * KILLS, f"only {landed} of {tries} kills landed inside a save"
        receiver, sender = FORK.Pipe(duplex=False)
        child = FORK.Process(target=_save_forever, args=(save, sender), daemon=True)
        child.start()
        time.sleep(rng.uniform(0.3, 4.0) * seconds_per_save)
        os.kill(child.pid, signal.SIGKILL)
        child.join()
        messages = []
        while receiver.poll():
            messages.append(receiver.recv())
        receiver.close()
        if messages and messages[-1][0] == "start":
            landed += 1
        versions.add(load())  # raises if the checkpoint is not whole
    print(f"{landed} SIGKILLs inside a save out of {tries}; 0 unloadable; versions seen {sorted(versions)}")
    return {"landed": landed, "tries": tries, "versions": versions}


def test_ncf_checkpoints_survive_sigkill_during_saves(ncf_parts, tmp_path):
    model, config, users, items, pairs = ncf_parts
    path = tmp_path / "ncf.pt"

    def save(version):
        save_ncf_checkpoint(path, model, config, users, items, pairs, {"version": version}, [], "x", "test")

    def load():
        checkpoint = load_ncf_checkpoint(path)
        assert torch.equal(checkpoint["model_state_dict"]["gmf_item.weight"],
                           model.state_dict()["gmf_item.weight"])
        return checkpoint["training_metrics"]["version"]

    started = time.perf_counter()
    save(0)
    outcome = _kill_during_saves(save, load, time.perf_counter() - started)
    assert outcome["landed"] >= KILLS
    save(100)  # the next save clears what the killed writers left
    # The lock file of the writers stays (an empty file; removing it would let two writers lock two files).
    assert sorted(p.name for p in tmp_path.iterdir()) == [".ncf.pt.lock", "ncf.pt", "ncf.pt.sha256"]
    assert load() == 100


def test_classifier_checkpoints_survive_sigkill_during_saves(trained_service, tmp_path):
    model = load_classifier(trained_service[0].checkpoint_dir)
    folder = tmp_path / "classifier"

    def save(version):
        save_classifier(model, folder, {"version": version})

    def load():
        return load_classifier(folder).training_metrics["version"]

    started = time.perf_counter()
    save(0)
    outcome = _kill_during_saves(save, load, time.perf_counter() - started)
    assert outcome["landed"] >= KILLS
    save(100)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".classifier.lock", "classifier"]
    assert load() == 100


def test_json_outputs_survive_sigkill_during_writes(tmp_path):
    path = tmp_path / "metrics.json"
    document = {"rows": list(range(200_000))}

    def save(version):
        write_json(path, {**document, "version": version})

    def load():
        import json

        return json.loads(path.read_text())["version"]

    started = time.perf_counter()
    save(0)
    outcome = _kill_during_saves(save, load, time.perf_counter() - started)
    assert outcome["landed"] >= KILLS


def test_a_swap_killed_between_its_renames_is_rolled_back_on_load(trained_service, tmp_path):
    folder = tmp_path / "classifier"
    save_classifier(load_classifier(trained_service[0].checkpoint_dir), folder, {"version": 1})
    folder.rename(tmp_path / ".classifier.old")  # the state after the first rename of a swap
    assert load_classifier(folder).training_metrics["version"] == 1
    assert folder.is_dir() and not (tmp_path / ".classifier.old").exists()
