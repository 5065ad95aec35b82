"""The papermill pipeline: a tiny real run end to end, and bad configs refused before any training."""

import json

import pytest

from neo_ml import paths
from neo_ml.commands.pipeline import main
from neo_ml.workbook.pipeline import STAGES, PipelineError, load_config, run_pipeline

TINY = paths.PROJECT_ROOT / "configs" / "tiny.yaml"
RUN_STAGES = list(STAGES)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    outputs = tmp_path_factory.mktemp("outputs")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("NEO_ML_OUTPUTS_DIR", str(outputs))
        patch.delenv("NEO_ML_NO_TRACKING")  # this run is tracked, into the embedded store under outputs/
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        return run_pipeline(TINY, "tiny", stages=RUN_STAGES, progress=False)


def test_the_run_is_one_parent_with_a_child_per_stage_and_both_models_registered(tiny_run):
    from mlflow.tracking import MlflowClient

    store = f"sqlite:///{tiny_run.parent.parent / 'mlflow.db'}"
    client = MlflowClient(store)
    runs = client.search_runs([client.get_experiment_by_name("neo-ml").experiment_id])
    parent = next(run for run in runs if run.info.run_name == "pipeline tiny")
    children = {run.info.run_name: run for run in runs if run.data.tags.get("mlflow.parentRunId") == parent.info.run_id}
    assert set(children) == set(RUN_STAGES) and len(runs) == 5
    assert all(run.info.status == "FINISHED" for run in runs)
    assert {a.path for a in client.list_artifacts(parent.info.run_id)} >= {"report.md", "manifest.json", "plots"}
    assert parent.data.params["git_commit"] and "packages.torch" in parent.data.params
    ncf = children["ncf"]
    assert ncf.data.params["model_config.epochs"] == "2" and "model_config.learning_rate" in ncf.data.params
    curve = client.get_metric_history(ncf.info.run_id, "val_ndcg_at_10")
    assert [point.step for point in curve] == [1, 2] and "best_val_ndcg_at_10" in ncf.data.metrics
    tuning = client.get_metric_history(children["classification"].info.run_id, "validation_loss")
    assert [point.step for point in tuning] == [1]  # tiny.yaml tunes the top layers one epoch
    for stage, model in (("ncf", "neo-ml-ncf"), ("classification", "neo-ml-classifier")):
        version = client.get_model_version_by_alias(model, "benchmark")
        assert version.run_id == children[stage].info.run_id
        assert {a.path for a in client.list_artifacts(version.run_id)} >= {"checkpoint", "notebooks"}


def test_the_run_folder_holds_notebooks_metrics_plots_report_and_manifest(tiny_run):
    for stage in RUN_STAGES:
        executed = json.loads((tiny_run / "notebooks" / STAGES[stage]).read_text())
        assert all(not any(o.get("output_type") == "error" for o in cell.get("outputs", []))
                   for cell in executed["cells"])
    plots = {p.stem for p in (tiny_run / "plots").glob("*.png")}
    assert {"interaction_long_tail", "interactions_per_user", "class_distribution", "text_lengths",
            "ncf_training_curves", "ncf_baselines", "classifier_training_curves", "per_class_f1",
            "confusion_matrix", "reliability_diagram", "classifier_baselines", "latency", "ncf_search"} <= plots
    report = (tiny_run / "report.md").read_text()
    assert all(f"plots/{name}.png" in report for name in plots)
    manifest = json.loads((tiny_run / "manifest.json").read_text())
    assert set(manifest["seconds"]) == set(RUN_STAGES) and manifest["parameters"]["ncf"]["CONFIG"]["epochs"] == 2
    assert manifest["data_checksums"]["ml-100k"].startswith("50895172")
    assert "torch" in manifest["package_versions"]
    assert (tiny_run / "models" / "ncf_benchmark_v1.pt").is_file()
    assert (tiny_run / "models" / "classification" / "benchmark_v1" / "manifest.json").is_file()
    assert (tiny_run / "data" / "neo_alexandria.db").is_file()


def test_stage_metrics_are_recorded(tiny_run):
    prepare = json.loads((tiny_run / "metrics" / "prepare.json").read_text())
    assert prepare["users"] == 943 and prepare["items"] == 1682 and prepare["texts"] == 120
    ncf = json.loads((tiny_run / "metrics" / "ncf.json").read_text())
    assert 0 < ncf["test_hr@10"] <= 1 and ncf["best_epoch"] in (1, 2)
    assert ncf["processes"] == 2  # tiny.yaml trains through torchrun with two DDP ranks
    search = ncf["search"]  # tiny.yaml searches 2 trials first: the base config, then one drawn
    assert search["finished_trials"] == 2 and search["base_trial"] == 0 and search["base_validation"] > 0
    assert [row["trial"] for row in ncf["tables"]["search"]] == [0, 1]
    classification = json.loads((tiny_run / "metrics" / "classification.json").read_text())
    assert classification["test_documents"] == 100 and 0 < classification["test_micro_f1"] <= 1
    versus = classification["tables"]["classifier_vs_baseline"]
    assert [row["model"] for row in versus] == ["classifier", "TF-IDF + LinearSVC"]
    checks = json.loads((tiny_run / "metrics" / "benchmark.json").read_text())["tables"]["checks"]
    # Quality checks must pass; latency is shown pass/fail, the benchmark command is the authority on speed.
    quality = [row for row in checks if "[ms]" not in row["check"]]
    assert len(checks) == 7 and len(quality) < 7 and all(row["passed"] for row in quality)
    assert all(row["value"] > 0 for row in checks if "[ms]" in row["check"])


def _config(tmp_path, text):
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("text, message", [
    ("ncf:\n  epochz: 3\n", r"section 'ncf': unknown key\(s\) \['epochz'\]"),
    ("training:\n  epochs: 3\n", r"unknown section\(s\) \['training'\]"),
    ("ncf: [1, 2]\n", "section 'ncf' must be a mapping"),
    ("ncf:\n  data: [unclosed\n", "not valid YAML"),
    ("ncf:\n  data: ml-100k\n", r"ncf.data: a dataset is named once, at the top level"),
    ("classification:\n  text_corpus: r8\n", r"classification.text_corpus: a dataset is named once"),
    ("ncf:\n  epochs: 3\n  config: {epochs: 4}\n", r"ncf: epochs is set both flat and under config:"),
    ("ncf:\n  config: {epochz: 4}\n", r"section 'ncf': config: unknown NCFConfig field\(s\) \['epochz'\]"),
    ("ncf:\n  config: [1]\n", r"ncf.config must be a mapping of NCFConfig fields"),
    ("classification:\n  max_length: 4\n", r"section 'classification': max_length must be an integer >= 8, got 4"),
])
def test_bad_configs_are_refused_naming_file_and_key(tmp_path, text, message):
    with pytest.raises(PipelineError, match=message):
        load_config(_config(tmp_path, text))


def test_a_missing_data_file_stops_the_run_before_any_notebook(tmp_path, capsys):
    config = _config(tmp_path, "interactions: /nowhere/interactions.json\n")
    assert main(["--config", str(config), "--run-name", "broken", "--no-progress"]) == 1
    assert "config.yaml: interactions: data file /nowhere/interactions.json not found" in capsys.readouterr().err
    assert not (paths.outputs_dir() / "runs" / "broken" / "notebooks").exists()


def test_any_config_field_may_be_set_flat_or_under_config_over_the_notebook_default(tmp_path):
    config = load_config(_config(tmp_path, "seed: 7\ninteractions: ml-100k\ntext_corpus: r8\n"
                                           "ncf:\n  embedding_dim: 16\n  config: {hidden_layers: [32, 16]}\n"
                                           "classification:\n  semantic_C: 2.0\n"))
    assert config["ncf"]["CONFIG"] == {"hidden_layers": [32, 16], "embedding_dim": 16}
    assert config["ncf"]["INTERACTIONS"] == "ml-100k" and config["prepare"]["INTERACTIONS"] == "ml-100k"
    # the notebook's own CONFIG default stays under what the YAML sets
    assert config["classification"]["CONFIG"] == {"epochs": 2, "tuned_layers": 2, "max_length": 64,
                                                  "semantic_C": 2.0}
    assert config["classification"]["TEXT_CORPUS"] == "r8" and "TEXT_CORPUS" not in config["ncf"]
    assert all(values["SEED"] == 7 for values in config.values())


def test_the_full_run_trains_the_readme_recipe_over_the_notebooks_small_default():
    """configs/full.yaml gives stage 03 the README's recipe, whatever notebook 03's own CONFIG holds (a 1e-4
    there once overrode the library's learning rate), and stage 04 trains R8 and R52 with it."""
    from neo_ml.classification.model import ClassifierConfig

    config = load_config(paths.PROJECT_ROOT / "configs" / "full.yaml")
    stage = config["classification"]
    recipe = ClassifierConfig.from_mapping({"seed": stage["SEED"], **stage["CONFIG"]})
    assert (recipe.epochs, recipe.tuned_layers, recipe.lexical_ngrams, recipe.max_length, recipe.inference) == (
        3, 2, 2, 256, "openvino-int8")
    assert recipe.learning_rate == ClassifierConfig().learning_rate and recipe.bf16
    assert config["benchmark"]["BENCHMARK_CORPORA"] == ["r8", "r52"]


def test_the_notebooks_agree_on_their_default_datasets():
    from neo_ml.workbook.pipeline import notebook_parameters, notebooks_dir

    defaults = [notebook_parameters(notebooks_dir() / notebook) for notebook in STAGES.values()]
    for name in ("INTERACTIONS", "TEXT_CORPUS"):
        assert len({values[name] for values in defaults if name in values}) == 1, name
