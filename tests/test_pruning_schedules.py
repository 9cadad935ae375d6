"""pruning_schedules: schedules from flags, the layers to prune, and the sparsity report, on a tiny encoder."""

import json

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_model_optimization as tfmot
import tf_keras as keras

import bert_keras
import pruning_schedules as ps

sparsity = tfmot.sparsity.keras
# tfmot exports no name for its wrapper class; this is where prune_low_magnitude gets it.
from tensorflow_model_optimization.python.core.sparsity.keras.pruning_wrapper import PruneLowMagnitude  # noqa: E402

CONFIG = bert_keras.BertConfig(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                               intermediate_size=48, max_position_embeddings=23, type_vocab_size=3)
KERNELS = bert_keras.kernel_layer_names(CONFIG, pooler=False)  # the 12 transformer kernels


def closed_form(step, initial, final, begin, end, power=3):
    """Zhu & Gupta's s_t = s_f + (s_i - s_f) (1 - (t - t0) / n)^power, held before t0 and after t0 + n."""
    progress = min(1.0, max(0.0, (step - begin) / (end - begin)))
    return final + (initial - final) * (1 - progress) ** power


def inputs(batch=8, seq=7, seed=0):
    rng = np.random.default_rng(seed)
    return {"input_word_ids": rng.integers(5, 99, (batch, seq)).astype(np.int32),
            "input_mask": np.ones((batch, seq), np.int32),
            "input_type_ids": rng.integers(0, 3, (batch, seq)).astype(np.int32)}


def classifier(encoder):
    """The encoder nested in a small task model, as train.py will use it."""
    features = {n: keras.Input((None,), dtype="int32", name=n) for n in bert_keras.INPUT_NAMES}
    logits = keras.layers.Dense(2, name="head")(encoder(features)["pooled_output"])
    model = keras.Model(features, logits, name="classifier")
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def fit_steps(model, steps):
    """`steps` training batches (steps 1..steps of the pruning wrappers)."""
    model.fit(inputs(), np.arange(8) % 2, batch_size=4, epochs=1, steps_per_epoch=steps, verbose=0,
              callbacks=[sparsity.UpdatePruningStep()])


def zero_fraction(variable):
    return float(np.mean(np.asarray(variable) == 0))


@pytest.fixture
def encoder():
    """A fresh random encoder per test: pruning shares (and zeros) the wrapped layers' weights."""
    return bert_keras.build_encoder(CONFIG)


# --- schedules ---

@pytest.mark.parametrize("step", [0, 1, 100, 250, 399, 400, 401, 10_000])
def test_polynomial_decay_follows_the_closed_form(step):
    schedule = ps.make_schedule("polynomial_decay", 0.9, begin_step=100, end_step=400, frequency=50,
                                initial_sparsity=0.1)
    assert isinstance(schedule, sparsity.PolynomialDecay)
    assert ps.sparsity_at(schedule, step) == pytest.approx(closed_form(step, 0.1, 0.9, 100, 400), abs=1e-6)


def test_polynomial_decay_power_and_turns():
    schedule = ps.make_schedule("polynomial_decay", 0.8, begin_step=10, end_step=30, frequency=5, power=2)
    assert ps.sparsity_at(schedule, 20) == pytest.approx(closed_form(20, 0.0, 0.8, 10, 30, power=2))
    assert ps.sparsity_at(schedule, 20) == pytest.approx(0.6)
    turns = [step for step in range(40) if bool(schedule(step)[0])]
    assert turns == [10, 15, 20, 25, 30]  # the last turn is end_step, at the target


def test_constant_sparsity_prunes_to_the_end_of_the_run():
    schedule = ps.make_schedule("constant", 0.7, begin_step=5, end_step=123, frequency=10)
    assert isinstance(schedule, sparsity.ConstantSparsity)
    assert schedule.end_step == -1  # end_step is polynomial_decay's; constant keeps pruning
    for step in (5, 6, 1000):
        assert ps.sparsity_at(schedule, step) == pytest.approx(0.7)
    assert [bool(schedule(step)[0]) for step in (4, 5, 6, 15, 100_005)] == [False, True, False, True, True]


def test_tfmot_polynomial_decay_misses_its_target_off_frequency():
    """Why make_schedule refuses end - begin not a multiple of frequency: tfmot never prunes at the end."""
    schedule = sparsity.PolynomialDecay(0.0, 0.5, begin_step=0, end_step=5, frequency=2)
    reached = max(float(schedule(step)[1]) for step in range(1, 50) if bool(schedule(step)[0]))
    assert reached == pytest.approx(closed_form(4, 0.0, 0.5, 0, 5)) and reached < 0.5
    with pytest.raises(ValueError, match=r"end_step=5.*frequency=2.*\[4, 6\]"):
        ps.make_schedule("polynomial_decay", 0.5, begin_step=0, end_step=5, frequency=2)


@pytest.mark.parametrize("kind, kwargs, message", [
    ("cubic", {}, r"kind='cubic'.*polynomial_decay, constant"),
    ("polynomial_decay", {"target_sparsity": 1.0}, "target_sparsity=1.0"),
    ("constant", {"target_sparsity": -0.1}, "target_sparsity=-0.1"),
    ("polynomial_decay", {"begin_step": -1}, "begin_step=-1"),
    ("constant", {"frequency": 0}, "frequency=0"),
    ("polynomial_decay", {"end_step": 100}, "end_step=100: must be after begin_step=100"),
    ("polynomial_decay", {"end_step": 50}, "end_step=50"),
    ("polynomial_decay", {"initial_sparsity": 1.5}, "initial_sparsity=1.5"),
    ("polynomial_decay", {"power": 0}, "power=0"),
])
def test_schedule_flag_errors(kind, kwargs, message):
    args = dict(target_sparsity=0.5, begin_step=100, end_step=300, frequency=100) | kwargs
    with pytest.raises(ValueError, match=message):
        ps.make_schedule(kind, args.pop("target_sparsity"), **args)


@pytest.mark.parametrize("total, warmup, frequency, expected", [
    (1000, 100, 100, (100, 700)),
    (1000, 100, 7, (100, 695)),   # 100 + 85 * 7: rounded down onto a pruning turn
    (10, 1, 2, (1, 7)),
    (10, 9, 1, (9, 10)),          # warm-up past 70%: one interval, still inside the run
    (3, 0, 1, (0, 2)),
])
def test_default_pruning_steps(total, warmup, frequency, expected):
    begin, end = ps.default_pruning_steps(total, warmup, frequency)
    assert (begin, end) == expected
    schedule = ps.make_schedule("polynomial_decay", 0.6, begin_step=begin, end_step=end, frequency=frequency)
    assert ps.sparsity_at(schedule, end) == pytest.approx(0.6) and bool(schedule(end)[0])


@pytest.mark.parametrize("total, warmup, frequency, message", [
    (10, 0, 100, "frequency=100 does not fit a run of 10 steps"),
    (0, 0, 1, "total_steps=0"),
    (10, 10, 1, "warmup_steps=10"),
    (10, -1, 1, "warmup_steps=-1"),
])
def test_default_pruning_steps_errors(total, warmup, frequency, message):
    with pytest.raises(ValueError, match=message):
        ps.default_pruning_steps(total, warmup, frequency)


# --- selection ---

def test_default_selection_is_the_transformer_kernels(encoder):
    assert ps.select_layers(encoder) == KERNELS
    assert len(KERNELS) == 12
    assert ps.select_layers(encoder, pooler=True) == KERNELS + ["pooler"]
    assert ps.select_layers(encoder, word_embeddings=True) == ["word_embeddings"] + KERNELS


def test_patterns_choose_exactly_their_full_matches(encoder):
    assert ps.select_layers(encoder, patterns=[r"layer_1_attention_.*"]) == [
        "layer_1_attention_query", "layer_1_attention_key", "layer_1_attention_value", "layer_1_attention_output"]
    # full match: "output" alone is no layer; ".*_output" takes attention outputs and FFN outputs.
    assert ps.select_layers(encoder, patterns=[r".*_output", "pooler"]) == [
        "layer_0_attention_output", "layer_0_output", "layer_1_attention_output", "layer_1_output", "pooler"]
    # flags add to the patterns' selection; token type embeddings are not prunable
    assert ps.select_layers(encoder, patterns=["layer_0_intermediate"], word_embeddings=True) == [
        "word_embeddings", "layer_0_intermediate"]
    assert ps.select_layers(encoder, patterns=[".*embeddings"]) == ["word_embeddings"]
    assert ps.select_layers(encoder, patterns=[]) == KERNELS  # an unset list flag


@pytest.mark.parametrize("patterns, message", [
    (["layer_2_.*"], r"'layer_2_\.\*' matches no prunable layer.*word_embeddings, layer_0_attention_query"),
    (["output"], "'output' matches no prunable layer"),
    (["head"], "'head' matches no prunable layer"),
    (["token_type_embeddings"], "matches no prunable layer"),
    (["layer_(0"], "not a regular expression"),
    ("layer_0_output", "expected a list of regular expressions"),
])
def test_pattern_errors(encoder, patterns, message):
    with pytest.raises(ValueError, match=message):
        ps.select_layers(encoder, patterns=patterns)


def test_the_classification_head_is_never_selected(encoder):
    model = classifier(encoder)
    with pytest.raises(ValueError, match="'classifier' has no BERT transformer kernels"):
        ps.select_layers(model)
    schedule = ps.make_schedule("constant", 0.5, begin_step=0, end_step=0, frequency=1)
    with pytest.raises(ValueError, match=r"'head' is not a Dense or Embedding layer of 'bert_encoder'"):
        ps.prune_encoder(encoder, KERNELS + ["head"], schedule)
    with pytest.raises(ValueError, match="'layer_0_attention' is not a Dense or Embedding layer"):
        ps.prune_encoder(encoder, ["layer_0_attention"], schedule)  # the attention op holds no weights
    with pytest.raises(ValueError, match="no layers to prune"):
        ps.prune_encoder(encoder, [], schedule)


@pytest.fixture(scope="module")
def trained():
    """A classifier over an encoder pruned from 0 to 50% in steps 0..4 every 2 steps, after 2 and 4 steps."""
    encoder = bert_keras.build_encoder(CONFIG)
    schedule = ps.make_schedule("polynomial_decay", 0.5, begin_step=0, end_step=4, frequency=2)
    pruned = ps.prune_encoder(encoder, KERNELS, schedule)
    model = classifier(pruned)
    fit_steps(model, 2)
    at_step_2 = {name: zero_fraction(encoder.get_layer(name).kernel) for name in KERNELS}
    fit_steps(model, 2)
    return {"encoder": encoder, "pruned": pruned, "model": model, "schedule": schedule, "at_step_2": at_step_2}


def test_prune_encoder_reaches_the_target_exactly_at_end_step(trained):
    encoder, pruned = trained["encoder"], trained["pruned"]
    assert pruned.name == encoder.name and set(pruned.output) == {"sequence_output", "pooled_output",
                                                                 "encoder_outputs"}
    wrapped = {l.layer.name for l in pruned.layers if isinstance(l, PruneLowMagnitude)}
    assert wrapped == set(KERNELS)
    assert [int(pruned.get_layer(f"prune_low_magnitude_{n}").pruning_step.numpy()) for n in KERNELS] == [4] * 12
    # Step 2 is a pruning turn: its masks follow the closed form (0.4375); 1024 * 0.4375 and 1536 * 0.4375 are whole.
    expected_2 = closed_form(2, 0.0, 0.5, 0, 4)
    assert expected_2 == pytest.approx(ps.sparsity_at(trained["schedule"], 2)) == pytest.approx(0.4375)
    assert trained["at_step_2"] == {name: expected_2 for name in KERNELS}
    for name in KERNELS:  # the wrappers share the encoder's variables: its kernels are pruned too
        assert zero_fraction(encoder.get_layer(name).kernel) == 0.5, name
    for name in ("pooler", "word_embeddings", "token_type_embeddings"):
        assert zero_fraction(encoder.get_layer(name).weights[0]) == 0.0, name
    assert zero_fraction(trained["model"].get_layer("head").kernel) == 0.0


def test_block_size_passes_through(encoder):
    schedule = ps.make_schedule("constant", 0.5, begin_step=0, end_step=0, frequency=1)
    pruned = ps.prune_encoder(encoder, KERNELS, schedule, block_size=[1, 4])
    assert pruned.get_layer("prune_low_magnitude_layer_0_output").block_size == (1, 4)
    fit_steps(classifier(pruned), 1)
    for name in KERNELS:
        kernel = np.asarray(encoder.get_layer(name).kernel)
        blocks = kernel.reshape(kernel.shape[0], -1, 4) == 0  # (input, output blocks, 4)
        assert np.all(blocks.all(-1) | ~blocks.any(-1)), f"{name}: a 1x4 block is partly zero"
        assert zero_fraction(kernel) == 0.5, name


def test_m_by_n_passes_through(encoder):
    schedule = ps.make_schedule("constant", 0.5, begin_step=0, end_step=0, frequency=1)
    pruned = ps.prune_encoder(encoder, ["layer_0_intermediate", "layer_1_output"], schedule, sparsity_m_by_n=(2, 4))
    assert pruned.get_layer("prune_low_magnitude_layer_1_output").sparsity_m_by_n == (2, 4)
    fit_steps(classifier(pruned), 1)
    for name in ("layer_0_intermediate", "layer_1_output"):
        kernel = np.asarray(encoder.get_layer(name).kernel)
        groups = kernel.T.reshape(kernel.shape[1], -1, 4) != 0  # (output, input groups of 4, 4)
        assert np.all(groups.sum(-1) == 2), name
    assert zero_fraction(encoder.get_layer("layer_0_output").kernel) == 0.0


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_leaves_float32_kernels_unrounded(policy):
    """tfmot masks kernels inside the forward pass, where Keras reads them in 16 bits: alone, it
    writes them back rounded, every step. Steps that change nothing must leave them bit for bit."""
    keras.mixed_precision.set_global_policy(policy)
    try:
        encoder = bert_keras.build_encoder(CONFIG)
        schedule = ps.make_schedule("constant", 0.5, begin_step=100, end_step=0, frequency=100)
        pruned = ps.prune_encoder(encoder, KERNELS, schedule)  # masks all ones until step 100
        model = classifier(pruned)
        model.compile(optimizer=keras.optimizers.SGD(0.0), loss=model.loss)
        kernels = {name: encoder.get_layer(name).kernel for name in KERNELS}
        before = {name: kernel.numpy() for name, kernel in kernels.items()}
        fit_steps(model, 3)
        half = {"mixed_float16": tf.float16, "mixed_bfloat16": tf.bfloat16}[policy]
        for name, kernel in kernels.items():
            rounded = tf.cast(tf.cast(before[name], half), tf.float32).numpy()
            assert not np.array_equal(rounded, before[name])  # rounding would show
            np.testing.assert_array_equal(kernel.numpy(), before[name], err_msg=name)
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_word_embeddings_prune_under_mixed_precision():
    """tfmot alone fails here: an Embedding's matrix does not autocast, the wrapper's mask does."""
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        encoder = bert_keras.build_encoder(CONFIG)
        schedule = ps.make_schedule("constant", 0.5, begin_step=0, end_step=0, frequency=1)
        names = ps.select_layers(encoder, patterns=["layer_0_output"], word_embeddings=True)
        pruned = ps.prune_encoder(encoder, names, schedule)
        assert pruned.get_layer("prune_low_magnitude_word_embeddings").output.dtype == "float16"
        fit_steps(classifier(pruned), 1)
        weights = {e["name"]: e for e in ps.sparsity_report(pruned, names)["weights"] if e["pruned"]}
        assert list(weights) == ["word_embeddings/embeddings", "layer_0_output/kernel"]
        assert weights["word_embeddings/embeddings"]["sparsity"] == 0.5  # ranked in float32: exact
        assert weights["layer_0_output/kernel"]["sparsity"] == 0.5
    finally:
        keras.mixed_precision.set_global_policy("float32")


@pytest.mark.parametrize("kwargs, message", [
    ({"block_size": (1,)}, r"block_size=\(1,\): expected two positive integers"),
    ({"block_size": (0, 4)}, "block_size"),
    ({"block_size": 4}, "block_size=4"),
    ({"sparsity_m_by_n": (4, 4)}, "needs m < n"),
    ({"sparsity_m_by_n": (2, True)}, "sparsity_m_by_n"),
    ({"block_size": (1, 4), "sparsity_m_by_n": (2, 4)}, "not both"),
    # 48 // 48 == 1: tfmot would squeeze the pooled kernel to 1-D and fail at the first training step
    ({"block_size": (1, 48)}, r"layer 'layer_0_intermediate'.*\(32, 48\)"),
    ({"block_size": (5, 1)}, r"layer 'layer_0_intermediate'.*\(32, 48\)"),  # tfmot would pad: not 50%
    ({"sparsity_m_by_n": (2, 5)}, r"layer 'layer_0_intermediate'.*n=5 must divide"),
])
def test_structure_errors(encoder, kwargs, message):
    schedule = ps.make_schedule("constant", 0.5, begin_step=0, end_step=0, frequency=1)
    with pytest.raises(ValueError, match=message):
        ps.prune_encoder(encoder, ["layer_0_intermediate"], schedule, **kwargs)


# --- report ---

def test_report_counts_zeros_and_survives_strip_pruning(trained):
    model = trained["model"]
    report = ps.sparsity_report(model, KERNELS)
    weights = {entry["name"]: entry for entry in report["weights"]}
    assert list(weights) == (["word_embeddings/embeddings", "token_type_embeddings/embeddings"]
                             + [f"{n}/kernel" for n in KERNELS] + ["pooler/kernel", "head/kernel"])
    assert weights["layer_1_output/kernel"] == {"name": "layer_1_output/kernel", "layer": "layer_1_output",
                                                "shape": [48, 32], "size": 1536, "zeros": 768, "sparsity": 0.5,
                                                "pruned": True}
    assert weights["pooler/kernel"]["zeros"] == 0 and not weights["pooler/kernel"]["pruned"]
    pruned_size = 8 * 32 * 32 + 4 * 32 * 48
    assert report["totals"]["pruned"] == {"weights": 12, "size": pruned_size, "zeros": pruned_size // 2,
                                          "sparsity": 0.5}
    all_size = pruned_size + 99 * 32 + 3 * 32 + 32 * 32 + 32 * 2
    assert report["totals"]["reported"]["size"] == all_size
    assert report["totals"]["reported"]["sparsity"] == pytest.approx(pruned_size / 2 / all_size)

    stripped = sparsity.strip_pruning(model)
    assert not any(isinstance(l, PruneLowMagnitude) for l in stripped.get_layer("bert_encoder").layers)
    assert ps.sparsity_report(stripped, KERNELS) == report
    # masks, thresholds and step counters are not parameters of the model
    assert report["totals"]["parameters"]["size"] == stripped.count_params() < model.count_params()
    assert report["totals"]["parameters"]["zeros"] >= pruned_size // 2

    unnamed = ps.sparsity_report(trained["pruned"])
    assert unnamed["totals"]["pruned"] is None and not any(e["pruned"] for e in unnamed["weights"])
    assert "head/kernel" not in {e["name"] for e in unnamed["weights"]}
    with pytest.raises(ValueError, match=r"\['head'\] have no Dense kernel"):
        ps.sparsity_report(trained["pruned"], KERNELS + ["head"])


def test_table_and_files(trained, tmp_path):
    report = ps.sparsity_report(trained["model"], KERNELS)
    table = ps.format_table(report)
    lines = table.splitlines()
    assert lines[0] == "sparsity of classifier"
    assert lines[1].split() == ["weight", "shape", "size", "zeros", "sparsity", "pruned"]
    rows = {line.split()[0]: line.split() for line in lines[3:3 + len(report["weights"])]}
    assert rows["layer_0_intermediate/kernel"] == ["layer_0_intermediate/kernel", "32x48", "1,536", "768", "50.00%",
                                                   "yes"]
    assert rows["pooler/kernel"] == ["pooler/kernel", "32x32", "1,024", "0", "0.00%"]
    # fixed width: every value column ends where its header ends
    end = lines[1].index("sparsity") + len("sparsity")
    assert all(line[:end].endswith("%") for line in lines[3:] if "%" in line)
    assert "pruned matrices (12)" in table and "all parameters" in table
    assert "pruned matrices" not in ps.format_table(ps.sparsity_report(trained["model"]))

    json_path, text_path = ps.write_report(report, str(tmp_path / "run" / "eval"))
    assert json_path == str(tmp_path / "run" / "eval" / "sparsity.json")
    with open(json_path) as f:
        assert json.load(f) == report
    with open(text_path) as f:
        assert f.read() == table + "\n"
