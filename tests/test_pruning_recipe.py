"""The pruning recipe: a schedule in epochs, a learning rate that re-warms at each mask update, per-layer
sparsities from one global ranking, and train.py's --distill pipeline."""

import json
import os
import signal
import types

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_model_optimization as tfmot
import tf_keras as keras

import bert_keras
import glue_tasks
import pruning_schedules as ps
from conftest import PRUNED_RUN, short_run_flags, train_in_process
from training import config as run_config
from training import model as task_model
from training import run_folder
from training.config import ConfigError, RunConfig
from training.optimization import StepPlan, WarmupRewarmDecay
from tensorflow_model_optimization.python.core.sparsity.keras.pruning_wrapper import PruneLowMagnitude

TINY = bert_keras.BertConfig(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                             intermediate_size=48, max_position_embeddings=23, type_vocab_size=3)


def test_rewarming_learning_rate_at_known_steps():
    # Warm-up to step 4; restarts at 3 (inside the warm-up: no restart), 9 and 15; 0 at step 20.
    rate = WarmupRewarmDecay(1.0, 4, 20, [3, 9, 15], floor=0.1)
    expected = {0: 0.0, 2: 0.5, 4: 1.0, 6: 1 - 0.9 * 2 / 5, 8: 1 - 0.9 * 4 / 5, 9: 1.0, 12: 1 - 0.9 * 3 / 6,
                14: 1 - 0.9 * 5 / 6, 15: 1.0, 17.5: 0.5, 19: 0.2, 20: 0.0, 30: 0.0}
    for step, value in expected.items():
        assert float(rate(tf.constant(step))) == pytest.approx(value, abs=1e-6), step
    assert WarmupRewarmDecay(**rate.get_config()).get_config() == rate.get_config()


def plan(steps_per_epoch=10, epochs=5, warmup=5):
    return StepPlan(steps_per_epoch=steps_per_epoch, total_steps=steps_per_epoch * epochs, epochs=epochs,
                    warmup_steps=warmup)


@pytest.mark.parametrize("settings, expected", [
    ({}, (5, 35, 100)),  # the defaults: end of warm-up to 70% (one interval of 100 fits... see below)
    ({"pruning_begin_epoch": 1, "pruning_end_epoch": 3.5, "pruning_frequency_epochs": 0.5}, (10, 35, 5)),
    ({"pruning_begin_epoch": 1, "pruning_end_epoch": 3.7, "pruning_frequency_epochs": 0.5}, (10, 35, 5)),
    ({"pruning_end_epoch": 4, "pruning_frequency_epochs": 1}, (5, 35, 10)),  # begins at the warm-up's end
    ({"pruning_begin_step": 2, "pruning_end_epoch": 2, "pruning_frequency": 3}, (2, 20, 3)),
    ({"pruning_updates": 8}, (5, 33, 4)),  # 8 updates 4 steps apart from the warm-up's end to 70% (35)
    ({"pruning_updates": 4, "pruning_end_epoch": 3}, (5, 29, 8)),
    ({"pruning_updates": 2, "pruning_begin_step": 0, "pruning_end_step": 7}, (0, 7, 7)),
])
def test_pruning_steps_in_epochs(settings, expected):
    config = RunConfig(target_sparsity=0.8, **settings)
    if not settings:  # 100 steps a mask update do not fit a run of 50 steps
        with pytest.raises(ValueError, match="frequency=100 does not fit a run of 50 steps"):
            task_model.pruning_steps(config, plan())
        return
    assert task_model.pruning_steps(config, plan()) == expected
    begin, end, frequency = expected
    assert task_model.mask_update_steps(config, plan()) == list(range(begin, end + 1, frequency))


@pytest.mark.parametrize("settings, message", [
    ({"target_sparsity": 0.8, "pruning_end_step": 9, "pruning_end_epoch": 1.0}, "pruning_end_step and pruning_end_epoch"),
    ({"target_sparsity": 0.8, "pruning_frequency": 9, "pruning_frequency_epochs": 1.0}, "pruning_frequency and "),
    ({"target_sparsity": 0.8, "pruning_frequency_epochs": 0.0}, "pruning_frequency_epochs=0"),
    ({"learning_rate_schedule": "rewarm"}, "learning_rate_schedule=rewarm: .*needs target_sparsity > 0"),
    ({"target_sparsity": 0.8, "learning_rate_schedule": "rewarm", "pruning_schedule": "constant"}, "rewarm"),
    ({"sparsity_ranking": "global"}, "sparsity_ranking=global: needs target_sparsity > 0"),
    ({"target_sparsity": 0.5, "sparsity_ranking": "global", "sparsity_m_by_n": (2, 4)}, "sparsity_ranking"),
])
def test_recipe_setting_errors(settings, message):
    with pytest.raises(ConfigError, match=message):
        RunConfig(**settings)


def test_a_pruning_end_after_the_run_is_refused():
    config = RunConfig(target_sparsity=0.8, pruning_end_epoch=6, pruning_frequency_epochs=1)
    with pytest.raises(ConfigError, match=r"pruning end step 55 .*after the run's last step, 50"):
        task_model.pruning_steps(config, plan())


def test_global_sparsities_share_one_threshold():
    kernels = {"a": np.array([[1.0, -2.0], [3.0, 4.0]]), "b": np.array([[-1.5, 10.0], [20.0, 30.0]])}
    # Sorted magnitudes 1, 1.5, 2, 3 | 4, 10, 20, 30: a loses three of four, b one.
    assert ps.global_sparsities(kernels, 0.5) == {"a": 0.75, "b": 0.25}
    assert ps.global_sparsities(kernels, 0.0) == {"a": 0.0, "b": 0.0}
    small = {"a": np.full((4, 4), 1e-3), "b": np.ones((4, 4))}
    assert ps.global_sparsities(small, 0.5)["a"] == ps.scores.MAX_LAYER_SPARSITY  # never a kernel of zeros
    # A capped kernel's excess goes to the others: the total stays the target.
    rng = np.random.default_rng(0)
    capped = {"a": rng.normal(size=(100, 100)) * 1e-3, "b": rng.normal(size=(100, 100)),
              "c": rng.normal(size=(100, 300))}
    found = ps.global_sparsities(capped, 0.7)
    assert found["a"] == ps.scores.MAX_LAYER_SPARSITY and found["b"] == pytest.approx(found["c"], abs=0.02)
    total = sum(found[n] * k.size for n, k in capped.items()) / sum(k.size for k in capped.values())
    assert total == pytest.approx(0.7, abs=1e-4)


def tiny_batches(steps, batch=4, seq=7):
    rng = np.random.default_rng(0)
    features = {"input_word_ids": rng.integers(5, 99, (steps * batch, seq)).astype(np.int32),
                "input_mask": np.ones((steps * batch, seq), np.int32),
                "input_type_ids": np.zeros((steps * batch, seq), np.int32)}
    return features, (np.arange(steps * batch) % 2).astype(np.int32)


def zeros(variable):
    return float(np.mean(variable.numpy() == 0))


@pytest.mark.parametrize("ranking", ["per_layer", "global"])
def test_masks_change_exactly_when_the_learning_rate_is_back_at_its_peak(ranking):
    """A real model.fit of the recipe: the batches whose masks change are those the rate re-warms for,
    each to the schedule's sparsity; globally ranked, the kernels differ but total the target."""
    keras.utils.set_random_seed(1)
    config = RunConfig(task="mrpc", target_sparsity=0.8, initial_sparsity=0.4, learning_rate=1e-3,
                       learning_rate_schedule="rewarm", pruning_begin_epoch=0.75, pruning_end_epoch=3.75,
                       pruning_frequency_epochs=1, sparsity_ranking=ranking)
    step_plan = StepPlan(steps_per_epoch=4, total_steps=20, epochs=5, warmup_steps=2)
    pretrained = types.SimpleNamespace(encoder=bert_keras.build_encoder(TINY), config=TINY)
    trained = task_model.build_training_model(config, pretrained, glue_tasks.get_task("mrpc"), step_plan)
    assert task_model.mask_update_steps(config, step_plan) == [3, 7, 11, 15]
    # During training tfmot re-applies the masks in each forward pass and the optimizer then moves the
    # zeroed weights, so the masks, not the kernels, say what is pruned between batches.
    wrappers = {layer.layer.name: layer for layer in trained.model.submodules if isinstance(layer, PruneLowMagnitude)}
    masks = [wrappers[name].pruning_vars[0][1] for name in trained.pruned_layers]
    sizes = np.array([int(np.prod(mask.shape)) for mask in masks])
    rates, sparsity = [], []

    class Record(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            step = int(self.model.optimizer.iterations.numpy())  # the batch just trained used step - 1's rate
            rates.append(float(trained.learning_rate(step - 1)))
            sparsity.append(np.array([zeros(mask) for mask in masks]))

    features, labels = tiny_batches(20)
    trained.model.fit(features, labels, batch_size=4, epochs=1, shuffle=False, verbose=0,
                      callbacks=[tfmot.sparsity.keras.UpdatePruningStep(), Record()])
    changed = [t + 1 for t in range(20) if not np.array_equal(sparsity[t], sparsity[t - 1] if t else 0 * sparsity[0])]
    assert changed == [3, 7, 11, 15]  # pruning step u updates the masks in batch u (1-based)
    for t in range(20):
        assert (rates[t] == pytest.approx(1e-3)) == (t + 1 in changed), (t + 1, rates[t])
    assert rates[-1] == pytest.approx(1e-3 * 1 / 6, rel=1e-5)  # the last phase decays to 0 at step 20
    schedule = task_model.pruning_schedule(config, step_plan)
    totals = [float((s * sizes).sum() / sizes.sum()) for s in sparsity]
    for step in changed:
        assert totals[step - 1] == pytest.approx(ps.sparsity_at(schedule, step), abs=2e-3), step
    assert totals[-1] == pytest.approx(0.8, abs=2e-3)
    assert (len(set(np.round(sparsity[-1], 3))) > 1) == (ranking == "global")


@pytest.mark.slow  # ~225 s; the default run's budget is 15 minutes: the configurations the pipeline gives
# its teacher and students (below) and a distilled student (test_distillation) run by default
def test_the_distill_pipeline_trains_the_teacher_then_each_student(minilm_dir, tmp_path, capsys):
    out = tmp_path / "mrpc"
    flags = short_run_flags(minilm_dir, str(out), "--distill", "--target_sparsity=0.8", "--max_steps=6",
                            "--teacher_epochs=0.1", "--pruning_begin_step=0", "--pruning_end_step=4",
                            "--pruning_frequency=2", "--learning_rate_schedule=rewarm", "--pruning_score=fisher",
                            "--sparsity_ranking=global", "--seed=2")
    train_in_process(flags)
    dense, student = out / "dense", out / "sparsity_0.8"
    assert run_folder.is_finished(str(dense)) and run_folder.is_finished(str(student))
    teacher = RunConfig.load(str(dense))
    assert (teacher.target_sparsity, teacher.teacher, teacher.learning_rate_schedule, teacher.num_train_epochs,
            teacher.pruning_end_step, teacher.pruning_score) == (0.0, None, "linear", 0.1, None, "magnitude")
    config = RunConfig.load(str(student))
    assert (config.target_sparsity, config.teacher, config.init_from, config.pruning_score,
            config.sparsity_ranking) == (0.8, str(dense), str(dense), "fisher", "global")
    assert run_folder.read_results(str(student))["sparsity"]["pruned"]["sparsity"] == pytest.approx(0.8, abs=1e-3)
    kernels = [w["sparsity"] for w in json.load(open(student / "sparsity.json"))["weights"] if w["pruned"]]
    assert len(kernels) == 36 and max(kernels) - min(kernels) > 0.05  # ranked together: each kernel its share
    # The summary puts the student beside its dense run and names its teacher.
    from training import summary
    summary.summarize(str(out))
    student_row = next(line for line in open(out / "results.md") if line.startswith("| RTE | 80% |"))
    assert student_row.rstrip().endswith("| `dense` | `dense` |"), student_row
    # Again, with another sparsity first: the teacher is read back, not retrained, and the finished
    # student refuses to be overwritten.
    capsys.readouterr()
    stamp = os.path.getmtime(dense / "eval_results.json")
    again = [f.replace("--target_sparsity=0.8", "--target_sparsity=0.8,0.5") for f in flags]
    with pytest.raises(SystemExit, match="sparsity_0.8: holds a finished run"):
        train_in_process(again)
    assert "the dense teacher, finished; reused" in capsys.readouterr().out
    assert os.path.getmtime(dense / "eval_results.json") == stamp
    assert not (out / "sparsity_0.5").exists()
    # A teacher of other settings in the folder is refused, not silently distilled from.
    other = [f for f in flags if not f.startswith("--seed")] + ["--seed=3"]
    with pytest.raises(SystemExit, match=r"dense: holds a finished dense run whose seed differ"):
        train_in_process(other)


def distill_configs(tmp_path, *flags):
    """The RunConfigs that train.py's flags ask for, without training."""
    import train
    train.FLAGS.unparse_flags()
    train.FLAGS(["train.py", "--task=rte", f"--output_dir={tmp_path}", *flags])
    try:
        return [config for config, _ in train.run_configs()]
    finally:
        train.FLAGS.unparse_flags()


def recipe(config):
    return (config.learning_rate, config.learning_rate_schedule, config.initial_sparsity, config.pruning_updates,
            config.pruning_frequency, config.pruning_score)


def test_the_distill_pipeline_takes_the_pruning_recipe_where_no_flag_is_given(tmp_path):
    teacher, student_80, student_30 = distill_configs(tmp_path, "--distill", "--target_sparsity=0.8,0.3")
    assert recipe(teacher) == (2e-5, "linear", 0.0, None, None, "magnitude")  # BERT's dense fine-tuning
    assert recipe(student_80) == (5e-5, "rewarm", 0.5, 8, None, "fisher")
    assert recipe(student_30) == (5e-5, "rewarm", 0.3, 8, None, "fisher")  # the first update at most the target
    _, structured = distill_configs(tmp_path, "--distill", "--target_sparsity=0.8",
                                    "--pruning_structure=heads_and_neurons")
    assert recipe(structured) == (5e-5, "rewarm", 0.5, 8, None, "taylor")
    # A flag given is the flag's: the teacher's learning rate too.
    teacher, student = distill_configs(tmp_path, "--distill", "--target_sparsity=0.8", "--learning_rate=3e-5",
                                       "--initial_sparsity=0", "--pruning_frequency=50", "--pruning_score=magnitude")
    assert (recipe(teacher), recipe(student)) == ((3e-5, "linear", 0.0, None, None, "magnitude"),
                                                  (3e-5, "rewarm", 0.0, None, 50, "magnitude"))
    teacher, student = distill_configs(tmp_path, "--distill", "--target_sparsity=0.8", "--pruning_score_batches=64")
    assert (teacher.pruning_score_batches, student.pruning_score_batches) == (16, 64)  # a pruning setting
    _, m_by_n = distill_configs(tmp_path, "--distill", "--target_sparsity=0.5", "--sparsity_m_by_n=2,4")
    assert recipe(m_by_n) == (5e-5, "linear", 0.0, None, None, "magnitude")  # what 2:4 sparsity allows
    # Without --distill a pruned run keeps the plain defaults.
    assert recipe(distill_configs(tmp_path, "--target_sparsity=0.8")[0]) == (2e-5, "linear", 0.0, None, None,
                                                                           "magnitude")


def test_distill_flag_errors(minilm_dir, tmp_path):
    cases = [(["--distill", "--target_sparsity=0,0.8"], "give sparsities > 0"),
             (["--distill", "--target_sparsity=0.8", f"--teacher={tmp_path}"], "give --distill or --teacher"),
             (["--teacher_epochs=1"], "teacher_epochs: only with --distill")]
    for extra, message in cases:
        with pytest.raises(SystemExit, match=message):
            train_in_process(short_run_flags(minilm_dir, str(tmp_path / "out"), *extra))


@pytest.mark.slow  # minutes: a teacher and two students, one of them killed and resumed
def test_a_distilled_rewarmed_globally_ranked_run_killed_and_resumed_ends_as_one_uninterrupted(
        dropout_free_minilm, tmp_path):
    from test_distribute import exported_variables, finish, resumed_at, start_train, wait_for_first_backup

    teacher = str(tmp_path / "teacher")
    train_in_process(short_run_flags(dropout_free_minilm, teacher, "--max_steps=4", "--seed=3"))
    recipe = [f for f in PRUNED_RUN if not f.startswith("--target_sparsity")] + [
        "--target_sparsity=0.6", "--initial_sparsity=0.3", f"--teacher={teacher}", f"--init_from={teacher}",
        "--learning_rate_schedule=rewarm", "--sparsity_ranking=global", "--learning_rate=5e-5"]
    runs = {name: str(tmp_path / name) for name in ("whole", "resumed")}
    finish(start_train(short_run_flags(dropout_free_minilm, runs["whole"], *recipe)))
    args = short_run_flags(dropout_free_minilm, runs["resumed"], *recipe)
    process = start_train(args)
    wait_for_first_backup(runs["resumed"], [process])
    process.send_signal(signal.SIGKILL)
    process.wait()
    resumed_at(finish(start_train(args)))
    whole, resumed = (run_folder.read_results(runs[name]) for name in ("whole", "resumed"))
    assert resumed["global_step"] == whole["global_step"] == 12
    assert resumed["eval_accuracy"] == whole["eval_accuracy"]
    assert resumed["eval_loss"] == pytest.approx(whole["eval_loss"], abs=1e-6)
    assert resumed["sparsity"]["pruned"] == whole["sparsity"]["pruned"]
    assert whole["sparsity"]["pruned"]["sparsity"] == pytest.approx(0.6, abs=1e-3)
    expected = exported_variables(runs["whole"])
    for name, value in exported_variables(runs["resumed"]).items():
        np.testing.assert_allclose(value, expected[name], atol=1e-5, rtol=0, err_msg=name)
