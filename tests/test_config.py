"""One source per config: NCFConfig and ClassifierConfig check their values in __post_init__, so a value
is refused with the same message from a notebook, the command line (one process or torchrun's two) and the
pipeline YAML (processes: 1 or 2)."""

import subprocess
import sys
from dataclasses import fields

import pytest

from neo_ml.classification.model import ClassifierConfig
from neo_ml.commands import config_from
from neo_ml.commands import train_classification as classification_command
from neo_ml.commands.train_ncf import main as train_ncf
from neo_ml.commands.train_ncf import make_parser
from neo_ml.errors import InvalidRequestError
from neo_ml.ncf.config import NCFConfig
from neo_ml.workbook.pipeline import PipelineError, load_config

BAD_NCF_VALUES = {  # field, a bad value as the YAML gives it, as the command line gives it, the message
    "dropout": (1.5, "1.5", "dropout must be a number with 0 <= dropout < 1, got 1.5"),
    "embedding_dim": (0, "0", "embedding_dim must be a positive integer, got 0"),
    "hidden_layers": ([64, -1], ["64", "-1"], "hidden_layers must be a positive integer, got -1"),
    "select_metric": ("mrr", "mrr", "select_metric must be one of ndcg@10, hr@10, ndcg@10_full, hr@10_full"),
    "device": ("tpu", "tpu", "device 'tpu': expected 'auto', 'cpu', 'cuda' or 'cuda:N'"),
    "learning_rate": (-0.1, "-0.1", "learning_rate must be a finite number > 0, got -0.1"),
}


def _message(call) -> str:
    with pytest.raises(InvalidRequestError) as caught:
        call()
    return str(caught.value)


@pytest.mark.parametrize("name", sorted(BAD_NCF_VALUES))
def test_a_bad_ncf_value_is_refused_alike_in_python_and_on_the_command_line(name, capsys, tmp_path):
    value, flag_value, expected = BAD_NCF_VALUES[name]
    in_python = _message(lambda: NCFConfig(**{name: value}))
    assert expected in in_python
    flag = "--" + name.replace("_", "-")
    arguments = [flag, *(flag_value if isinstance(flag_value, list) else [flag_value])]
    assert train_ncf(["--data", "ml-100k", "--output", str(tmp_path / "m.pt"), *arguments]) == 1
    assert capsys.readouterr().err.strip() == f"error: {in_python}"
    assert not (tmp_path / "m.pt").exists()


@pytest.mark.parametrize("processes", [1, 2])
def test_processes_1_and_2_refuse_the_same_bad_yaml_value_with_the_same_message(processes, tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text(f"ncf:\n  processes: {processes}\n  dropout: 1.5\n")
    with pytest.raises(PipelineError) as caught:
        load_config(config)
    assert str(caught.value) == (f"{config}: section 'ncf': "
                                 + _message(lambda: NCFConfig(dropout=1.5)))


def test_torchrun_ranks_refuse_a_bad_value_with_the_message_of_one_process(tmp_path):
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "-m",
                           "neo_ml.train_ncf", "--data", "ml-100k", "--output", str(tmp_path / "m.pt"),
                           "--dropout", "1.5"], capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    errors = {line for line in done.stderr.splitlines() if line.startswith("error:")}
    assert errors == {"error: " + _message(lambda: NCFConfig(dropout=1.5))}


def test_every_config_field_is_a_flag_and_comes_back_from_it():
    args = make_parser().parse_args(["--data", "x", "--output", "y", "--embedding-dim", "8", "--hidden-layers",
                                     "16", "8", "--lr", "0.01", "--sparse", "--gmf-dim", "4"])
    config = config_from(args, NCFConfig)
    assert (config.embedding_dim, config.hidden_layers, config.learning_rate, config.sparse, config.gmf_dim) == (
        8, [16, 8], 0.01, True, 4)
    parser = classification_command.build_parser("x", "x", classification_command.RunArguments, ClassifierConfig)
    destinations = {action.dest for action in parser._actions}
    assert {f.name for f in fields(ClassifierConfig)} <= destinations
    assert {f.name for f in fields(NCFConfig)} <= {action.dest for action in make_parser()._actions}


def test_a_classifier_value_is_refused_alike_in_python_and_on_the_command_line(capsys, tmp_path):
    in_python = _message(lambda: ClassifierConfig(max_length=4))
    assert classification_command.main(["--data", "r8", "--output", str(tmp_path / "c"), "--max-length", "4"]) == 1
    assert capsys.readouterr().err.strip() == f"error: {in_python}"


def test_from_mapping_names_an_unknown_field_and_its_source():
    with pytest.raises(InvalidRequestError, match=r"CONFIG: unknown NCFConfig field\(s\) \['epoch'\]"):
        NCFConfig.from_mapping({"epoch": 3}, "CONFIG")
    with pytest.raises(InvalidRequestError, match="CONFIG: expected a mapping of ClassifierConfig fields"):
        ClassifierConfig.from_mapping([1], "CONFIG")
    assert NCFConfig.from_mapping({"epochs": 3}).to_dict() == {**NCFConfig().to_dict(), "epochs": 3}
