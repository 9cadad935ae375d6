"""training.config and training.run_folder: the one run configuration, its file, the folder's rules."""

import dataclasses
import json
import os
import re
import subprocess
import sys

import pytest
from absl import flags

from conftest import REPO
from training import run_folder
from training.config import ConfigError, RunConfig, fields


def test_round_trip_through_train_config_json(tmp_path):
    config = RunConfig(task="rte", learning_rate=3e-5, output_dir=str(tmp_path), target_sparsity=0.5,
                       block_size=(1, 4), prune_layers=("layer_0_.*",))
    config.save(str(tmp_path))
    written = json.load(open(tmp_path / "train_config.json"))
    assert written["format_version"] == 1 and written["block_size"] == [1, 4]
    loaded = RunConfig.load(str(tmp_path))
    assert loaded == config and loaded.block_size == (1, 4) and loaded.pruned
    assert not dataclasses.replace(config, target_sparsity=0.0).pruned


def test_a_folder_written_by_an_older_train_py_is_a_clear_error(tmp_path):
    """train.py once wrote its raw flags, with no format version: readers refuse, naming the file."""
    (tmp_path / "train_config.json").write_text(json.dumps({"task": "rte", "learning_rate": 2e-5}))
    with pytest.raises(ConfigError, match=r"train_config.json: written by another version of train.py "
                                          r"\(no format_version"):
        RunConfig.load(str(tmp_path))
    (tmp_path / "train_config.json").write_text(json.dumps({"format_version": 1, "tsak": "rte"}))
    with pytest.raises(ConfigError, match=r"unknown settings \['tsak'\]"):
        RunConfig.load(str(tmp_path))
    with pytest.raises(ConfigError, match=r"no such file; .* is not a train.py run folder"):
        RunConfig.load(str(tmp_path / "missing"))


@pytest.mark.parametrize("values, message", [
    ({"target_sparsity": 1.5}, r"target_sparsity=1.5: expected a fraction in \[0, 1\)"),
    ({"initial_sparsity": -0.1}, r"initial_sparsity=-0.1"),
    ({"mixed_precision": "int8"}, r"mixed_precision='int8': expected one of auto, float16"),
    ({"train_batch_size": 0}, r"train_batch_size=0: expected at least 1"),
    ({"block_size": (1, 0)}, r"block_size=\(1, 0\): expected two positive integers"),
    ({"block_size": (1, 4), "sparsity_m_by_n": (2, 4)}, r"give one, not both"),
    ({"distribution_strategy": "tpu"}, r"tpu needs padding fixed"),
    ({"pruning_updates": 8, "pruning_frequency_epochs": 0.5}, r"pruning_updates and pruning_frequency_epochs"),
    ({"pruning_updates": 1}, r"pruning_updates=1: expected at least 2"),
])
def test_invalid_values_name_the_setting(values, message):
    with pytest.raises(ConfigError, match=message):
        RunConfig(**values)


def test_identity_decides_what_resumes(tmp_path):
    folder = str(tmp_path / "run")
    config = RunConfig(task="rte", output_dir=folder)
    run_folder.check(folder, config)
    assert not os.path.exists(folder)  # checking writes nothing
    run_folder.claim(folder, config)
    run_folder.claim(folder, dataclasses.replace(config, log_steps=7, glue_dir="/elsewhere"))  # not identity
    with pytest.raises(run_folder.RunFolderError, match=r"another configuration \(--task: 'rte' there, 'mrpc' now\)"):
        run_folder.check(folder, dataclasses.replace(config, task="mrpc"))
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    for overwrite in (False, True):  # a folder that holds no run is never replaced
        with pytest.raises(run_folder.RunFolderError, match=r"not empty and holds no run of train.py"):
            run_folder.claim(str(tmp_path / "other"), config, overwrite=overwrite)
    assert (tmp_path / "other" / "notes.txt").read_text() == "mine"
    (tmp_path / "run" / "eval_results.json").write_text("{}")
    with pytest.raises(run_folder.RunFolderError, match=r"holds a finished run.*--overwrite_output_dir"):
        run_folder.check(folder, config)
    mrpc = dataclasses.replace(config, task="mrpc")
    run_folder.claim(folder, mrpc, overwrite=True)  # replaced on purpose: the old run's files are gone
    assert os.listdir(folder) == ["train_config.json"] and RunConfig.load(folder) == mrpc
    with pytest.raises(run_folder.RunFolderError, match=r"cannot write there \(.*notes.txt is not a writable folder"):
        run_folder.check(str(tmp_path / "other" / "notes.txt" / "run"), config)


@pytest.mark.parametrize("args, message", [
    (["--task=sst3"], r"flag --task=sst3: expected one of cola, .*, wnli or all"),
    (["--task=ax"], r"flag --task=ax: expected one of"),
    (["--task=rte", "--target_sparsity=1.5"], r"flag --target_sparsity=\['1.5'\]: expected fractions in \[0, 1\), comma-separated$"),
    (["--task=rte", "--block_size=1"], r"flag --block_size=1: expected two positive integers"),
    (["--task=rte", "--learning_rate=2e-5,-1"], r"flag --learning_rate=.*: expected positive numbers"),
])
def test_bad_flag_values_fail_as_they_are_parsed(args, message):
    """A wrong value is named before anything loads, not after the checkpoint and data."""
    import train

    train.FLAGS.unparse_flags()
    try:
        with pytest.raises(flags.IllegalFlagValueError, match=message):
            train.FLAGS(["train.py", *args])
    finally:
        train.FLAGS.unparse_flags()


def test_bad_flags_on_the_command_line_print_one_line():
    cases = [(["--task=sst3"], r"^FATAL Flags parsing error: flag --task=sst3: expected one of"),
             (["--task=rte", "--distribution_strategy=tpu"], r"^error: --distribution_strategy tpu needs padding fixed")]
    for args, message in cases:
        result = subprocess.run([sys.executable, "train.py", *args], cwd=REPO, capture_output=True, text=True,
                                timeout=120)
        lines = [line for line in result.stderr.splitlines() if line.startswith(("FATAL", "error:"))]
        assert result.returncode == 1 and len(lines) == 1 and re.search(message, lines[0]), (args, result.stderr)
        assert len(result.stdout.splitlines()) + len(result.stderr.splitlines()) < 12, (args, result.stderr)


def test_train_py_has_a_flag_for_every_field_with_its_default():
    import train

    for field in fields():
        flag = train.FLAGS[field.name]
        if field.name in train.SWEEP:
            continue
        assert flag.help.endswith(field.metadata["help"]), field.name  # an enum's help starts with <a|b>
        default = flag.default
        if field.name in ("block_size", "sparsity_m_by_n", "prune_layers", "labels"):
            assert default is None and field.default is None
        elif field.name == "text_columns":
            assert tuple(default) == field.default
        else:
            assert default == field.default, field.name


def test_parse_pair():
    import train

    assert train.parse_pair("1,4", "block_size") == (1, 4)
    assert train.parse_pair(" 2, 4 ", "sparsity_m_by_n") == (2, 4)
    for text in ("4", "1,2,3", "a,b", "0,4", "-1,4", "", "1.5,2"):
        with pytest.raises(flags.ValidationError, match="expected two positive integers"):
            train.parse_pair(text, "block_size")


def test_results_file_in_the_seed_format(tmp_path):
    run_folder.write_results(str(tmp_path), {"eval_accuracy": 0.5, "eval_time_s": 30.0, "global_step": 12,
                                             "loss": None, "train_time_s": 90.0, "policy": "float32"})
    assert (tmp_path / "eval_results.txt").read_text().splitlines() == [
        "eval_accuracy = 0.5", "global_step = 12", "train_time: 1.50 min", "eval_time: 0.50 min"]
    assert run_folder.read_results(str(tmp_path))["policy"] == "float32"
    assert os.path.isfile(tmp_path / "eval_results.json")
