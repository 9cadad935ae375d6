"""The one run configuration: every setting of a fine-tuning run, typed, with its default and help.

train.py's flags are made from these fields and fill a `RunConfig`; train.py writes it into the run
folder as `train_config.json`; evaluate.py, the summary and the benchmarks read it back with
`RunConfig.load`. Fields marked `identity` define what a run computes: resuming a folder that holds
a run whose identity differs is refused. The others say where data lie or how a run is carried out
(devices, logging), and may change between a run and its resumption.
"""

import dataclasses
import json
import os
import typing
from typing import Optional

TFLITE_QUANTIZATIONS = ("float", "dynamic_range", "full_integer")  # training.tflite's
FORMAT_VERSION = 1  # of train_config.json; a folder written before the field existed has none
CONFIG_FILE = "train_config.json"


class ConfigError(ValueError):
    """A configuration that is invalid, or a train_config.json this version cannot read."""


def _field(default, help, *, identity=False, choices=None, lower_bound=None):
    return dataclasses.field(default=default, metadata={
        "help": help, "identity": identity, "choices": choices, "lower_bound": lower_bound})


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """One fine-tuning run (names as google-research/bert's run_classifier.py where it has one)."""

    # What is trained, on what.
    task: str = _field("sst2", "GLUE task, as tensorflow-datasets names it.", identity=True)
    init_checkpoint: str = _field(
        "uncased_L-12_H-768_A-12", "Pretrained BERT: a name Google released (downloaded), or a TF1, "
        "Hugging Face or converted folder (see bert_keras.load_encoder).", identity=True)
    data_dir: Optional[str] = _field(None, "tensorflow-datasets data folder (default ~/tensorflow_datasets).")
    tfds_manual_dir: Optional[str] = _field(None, "GLUE's own download files, for an offline tfds build.")
    glue_dir: Optional[str] = _field(None, "Read GLUE's original files from this folder instead of tfds.")
    output_dir: str = _field("output/sst2", "The run's folder.")
    # Your own data instead of GLUE (glue_tasks.user_data): the task is then named after train_file.
    train_file: Optional[str] = _field(None, "Your own training data: a .csv, .tsv or .jsonl file with "
                                       "--text_columns and --label_column (instead of --task).")
    validation_file: Optional[str] = _field(None, "Your own dev data (with --train_file), evaluated each epoch.")
    text_columns: tuple[str, ...] = _field(("sentence",), "The text column, or two for sentence pairs "
                                           "(with --train_file).", identity=True)
    label_column: str = _field("label", "The label column (with --train_file).", identity=True)
    labels: Optional[tuple[str, ...]] = _field(None, "The class labels, in id order (default: those of "
                                               "--train_file, sorted).", identity=True)
    regression: bool = _field(False, "The label is a number to predict (mean squared error), not a class.",
                              identity=True)

    # Optimisation.
    learning_rate: float = _field(2e-5, "Peak learning rate.", identity=True)
    num_train_epochs: float = _field(3.0, "Epochs of training data.", identity=True)
    max_steps: Optional[int] = _field(None, "Stop after this many steps (a cap, for short runs).", identity=True,
                                      lower_bound=1)
    train_batch_size: int = _field(32, "Training batch size (the global batch under a strategy).", identity=True,
                                   lower_bound=1)
    eval_batch_size: int = _field(64, "Evaluation batch size.", lower_bound=1)
    max_seq_length: int = _field(128, "Maximum tokens of [CLS] A [SEP] B [SEP].", identity=True, lower_bound=3)
    warmup_proportion: float = _field(0.1, "Share of the steps with a linear learning-rate warm-up.",
                                      identity=True)
    weight_decay: float = _field(0.01, "AdamW weight decay (not on LayerNorm or biases).", identity=True)
    seed: int = _field(42, "Random seed (weights of the head, dropout, shuffling).", identity=True)

    # How it runs.
    save_checkpoints_steps: int = _field(1000, "Back up the training state every N steps (and each epoch).",
                                         lower_bound=1)
    log_steps: int = _field(50, "Write training loss and learning rate to TensorBoard every N steps.",
                            lower_bound=1)
    mixed_precision: str = _field(
        "auto", "auto: mixed_float16 on a CUDA GPU, mixed_bfloat16 on a CPU with native bfloat16, float32 "
        "otherwise.", identity=True, choices=("auto", "float16", "bfloat16", "float32"))
    xla: bool = _field(False, "Compile the training step with XLA.")
    distribution_strategy: str = _field(
        "default", "default: one device; mirrored: every GPU of this machine (without one, its logical CPUs: "
        "--cpu_devices); multi_worker_mirrored: several machines, each described by TF_CONFIG; tpu: a Cloud TPU "
        "(--tpu).", choices=("default", "mirrored", "multi_worker_mirrored", "tpu"))
    tpu: Optional[str] = _field(None, "The TPU's name or grpc:// address for --distribution_strategy tpu "
                                "('local' on a TPU VM).")
    cpu_devices: int = _field(1, "Split the CPU into this many logical devices, for mirrored training on a "
                              "machine without GPUs (tests, demos: they share the same cores).", lower_bound=1)
    padding: str = _field("bucket", "bucket: pad each batch to its length bucket; fixed: pad to max_seq_length "
                          "(XLA, TPU).", identity=True, choices=("bucket", "fixed"))
    bucket_width: int = _field(4, "--padding bucket: tokens between length buckets; batches are padded to a "
                               "multiple of it (with --xla each batch shape compiles once).", identity=True,
                               lower_bound=1)

    export_tflite: Optional[tuple[str, ...]] = _field(
        None, "Also export TensorFlow Lite models (token ids in, logits out; vocab.txt beside them) into "
        f"OUTPUT_DIR/tflite/, one a quantisation: {', '.join(TFLITE_QUANTIZATIONS)}.")

    export_xla: bool = _field(False, "Export the SavedModel with its classifier compiled by XLA: requests padded "
                              "to 16, 32, 64, ... tokens, each (batch size, length) compiled on its first call "
                              "(about a second); then faster at batch 1, slower in large batches. TensorFlow "
                              "Serving needs --xla_cpu_compilation_enabled=true for it.")

    init_from: Optional[str] = _field(None, "Start from a finished train.py run (or its saved_model/) of the same "
                                      "task and model: its encoder and head, not init_checkpoint's encoder and a "
                                      "fresh head (init_checkpoint still gives the config and vocabulary).",
                                      identity=True)

    # Knowledge distillation from a fine-tuned run of the same task (training.distillation).
    teacher: Optional[str] = _field(None, "A finished train.py run (or its saved_model/) of the same task to "
                                    "distil from: its outputs on the training set are the soft targets.",
                                    identity=True)
    distill_alpha: float = _field(1.0, "With --teacher: the teacher term's weight; 1 - alpha weighs the task "
                                  "loss.", identity=True)
    distill_temperature: float = _field(2.0, "With --teacher: the softmax temperature of both sides.",
                                        identity=True)

    # Magnitude pruning of the encoder's kernels while fine-tuning (Zhu & Gupta, 2017).
    target_sparsity: float = _field(0.0, "Final share of zeros in each pruned kernel; 0 trains dense.",
                                    identity=True)
    pruning_structure: str = _field(
        "weights", "weights: single weights (or --block_size blocks), by tfmot. heads_and_neurons: whole attention "
        "heads and feed-forward neurons, target_sparsity of each layer's (or, with --sparsity_ranking global, "
        "of all layers'), sliced out at export: a smaller, faster model.", identity=True,
        choices=("weights", "heads_and_neurons"))
    pruning_score: str = _field(
        "magnitude", "What ranks what pruning removes. magnitude: single weights by |w| (tfmot), heads and "
        "neurons by their weights' L2 norm. fisher (single weights): w^2 x the mean squared gradient over "
        "--pruning_score_batches training batches at each update, the second-order estimate of the loss a "
        "weight's removal costs (oBERT's, diagonal). taylor (heads and neurons): |dL/dmask| of each group over "
        "the same batches, the first-order one. With --sparsity_ranking global, fisher ranks every kernel's "
        "scores together at each update (oBERT's ranking).", identity=True, choices=("magnitude", "fisher", "taylor"))
    pruning_score_batches: int = _field(16, "--pruning_score fisher or taylor: the training batches each score "
                                        "averages over (the run's first, the same at every update).",
                                        identity=True, lower_bound=1)
    pruning_schedule: str = _field("polynomial_decay", "tfmot's PolynomialDecay (power 3) or ConstantSparsity.",
                                   identity=True, choices=("polynomial_decay", "constant"))
    initial_sparsity: float = _field(0.0, "PolynomialDecay's starting sparsity.", identity=True)
    pruning_begin_step: Optional[int] = _field(None, "First pruning step (default: end of warm-up).",
                                               identity=True, lower_bound=0)
    pruning_end_step: Optional[int] = _field(None, "Step reaching target_sparsity (default: 70% of the run).",
                                             identity=True, lower_bound=1)
    pruning_frequency: Optional[int] = _field(None, "Steps between mask updates (default 100).", identity=True,
                                              lower_bound=1)
    # The same three in epochs, so that one setting suits a small task and a large one.
    pruning_begin_epoch: Optional[float] = _field(None, "First pruning step, in epochs (instead of "
                                                  "--pruning_begin_step).", identity=True, lower_bound=0)
    pruning_end_epoch: Optional[float] = _field(None, "When target_sparsity is reached, in epochs (instead of "
                                                "--pruning_end_step; rounded down to a mask update).",
                                                identity=True, lower_bound=0)
    pruning_frequency_epochs: Optional[float] = _field(None, "Epochs between mask updates (instead of "
                                                       "--pruning_frequency).", identity=True, lower_bound=0)
    pruning_updates: Optional[int] = _field(
        None, "Mask updates from the first pruning step to the last, evenly spaced (instead of --pruning_frequency "
        "or --pruning_frequency_epochs): the same schedule's shape whatever the run's length.", identity=True,
        lower_bound=2)
    learning_rate_schedule: str = _field(
        "linear", "linear: warm-up, then linear decay to 0 (BERT's). rewarm (pruned runs): warm-up, then back "
        "to the peak at each mask update and down to a tenth of it before the next, and to 0 at the end.",
        identity=True, choices=("linear", "rewarm"))
    sparsity_ranking: str = _field(
        "per_layer", "per_layer: each kernel pruned to target_sparsity (tfmot's). global: each kernel's "
        "sparsity from one magnitude ranking of all pruned kernels at the start, the same total (with "
        "--pruning_score fisher: of all their scores, at each update; with --pruning_structure heads_and_neurons: "
        "all layers' heads, and neurons, ranked together at each update).",
        identity=True, choices=("per_layer", "global"))
    prune_pooler: bool = _field(False, "Also prune the pooler's kernel.", identity=True)
    prune_word_embeddings: bool = _field(False, "Also prune the word embeddings.", identity=True)
    prune_layers: Optional[tuple[str, ...]] = _field(
        None, "Regular expressions: prune exactly the encoder layers they match.", identity=True)
    block_size: Optional[tuple[int, int]] = _field(None, "Prune blocks, e.g. '1,4' (tfmot block_size).",
                                                   identity=True)
    sparsity_m_by_n: Optional[tuple[int, int]] = _field(None, "Structured M:N sparsity, e.g. '2,4'.",
                                                        identity=True)

    def __post_init__(self):
        for name in ("prune_layers", "block_size", "sparsity_m_by_n", "text_columns", "labels", "export_tflite"):  # JSON gives lists: keep them hashable
            value = getattr(self, name)
            if isinstance(value, list):
                object.__setattr__(self, name, tuple(value))
        check(self)

    @property
    def pruned(self):
        """Whether the run prunes: the one test of it, here and in every reader of a run folder."""
        return self.target_sparsity > 0

    def identity(self):
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.metadata["identity"]}

    def to_json(self):
        return {"format_version": FORMAT_VERSION, **dataclasses.asdict(self)}

    @classmethod
    def from_json(cls, values, where):
        """A RunConfig from `to_json`'s dict; `where` (the file) names the source in errors."""
        version = values.get("format_version")
        if version != FORMAT_VERSION:
            found = "no format_version" if version is None else f"format_version {version}"
            raise ConfigError(f"{where}: written by another version of train.py ({found}, this one reads "
                              f"{FORMAT_VERSION}); train the run again with this version")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names - {"format_version"})
        if unknown:
            raise ConfigError(f"{where}: unknown settings {unknown}")
        return cls(**{k: v for k, v in values.items() if k in names})

    def save(self, run_dir):
        with open(os.path.join(run_dir, CONFIG_FILE), "w") as f:
            json.dump(self.to_json(), f, indent=2, sort_keys=True)

    @classmethod
    def load(cls, run_dir):
        """The configuration of the train.py run in `run_dir`."""
        path = os.path.join(run_dir, CONFIG_FILE)
        try:
            with open(path) as f:
                values = json.load(f)
        except FileNotFoundError:
            raise ConfigError(f"{path}: no such file; {run_dir} is not a train.py run folder") from None
        except json.JSONDecodeError as e:
            raise ConfigError(f"{path}: not valid JSON ({e})") from None
        return cls.from_json(values, path)


def fields():
    """The fields of RunConfig, in order: what train.py turns into flags."""
    return dataclasses.fields(RunConfig)


def define_flags(names, **defaults):
    """Defines an absl flag for each named field (for a program's command line: train.py, the
    benchmarks), with the field's help and default unless `defaults` gives another. A pair such as
    block_size is a string ("1,4"), a list of strings a comma-separated list."""
    from absl import flags

    by_name = {f.name: f for f in fields()}
    for name in names:
        field = by_name[name]
        kind, meta, default = field.type, field.metadata, defaults.get(name, field.default)
        if typing.get_origin(kind) is typing.Union:  # Optional[X]
            kind = next(a for a in typing.get_args(kind) if a is not type(None))
        if meta["choices"]:
            flags.DEFINE_enum(name, default, meta["choices"], meta["help"])
        elif typing.get_origin(kind) is tuple and typing.get_args(kind)[1:] == (Ellipsis,):
            flags.DEFINE_list(name, default and list(default), meta["help"])
        elif typing.get_origin(kind) is tuple or kind is str:
            flags.DEFINE_string(name, default, meta["help"])
        elif kind is int:
            flags.DEFINE_integer(name, default, meta["help"], lower_bound=meta["lower_bound"])
        else:
            {bool: flags.DEFINE_bool, float: flags.DEFINE_float}[kind](name, default, meta["help"])


def check_value(name, value):
    """Raises ConfigError naming the setting unless `value` is valid for the field `name` on its own."""
    meta = next(f for f in dataclasses.fields(RunConfig) if f.name == name).metadata
    if value is None:
        return
    if meta["choices"] and value not in meta["choices"]:
        raise ConfigError(f"{name}={value!r}: expected one of {', '.join(meta['choices'])}")
    if meta["lower_bound"] is not None and value < meta["lower_bound"]:
        raise ConfigError(f"{name}={value}: expected at least {meta['lower_bound']}")
    if name in ("target_sparsity", "initial_sparsity", "warmup_proportion") and not 0 <= value < 1:
        raise ConfigError(f"{name}={value}: expected a fraction in [0, 1)")
    if name == "distill_alpha" and not 0 <= value <= 1:
        raise ConfigError(f"{name}={value}: expected a weight in [0, 1]")
    if name in ("learning_rate", "num_train_epochs", "distill_temperature") and not value > 0:
        raise ConfigError(f"{name}={value}: expected a positive number")
    if name == "weight_decay" and value < 0:
        raise ConfigError(f"{name}={value}: expected a number >= 0")
    if name == "export_tflite" and (not value or any(q not in TFLITE_QUANTIZATIONS for q in value)):
        raise ConfigError(f"{name}={','.join(value)}: expected one or more of {', '.join(TFLITE_QUANTIZATIONS)}")
    if name in ("block_size", "sparsity_m_by_n") and (
            len(value) != 2 or not all(isinstance(v, int) and v > 0 for v in value)):
        raise ConfigError(f"{name}={value!r}: expected two positive integers, like (1, 4)")


def check(config):
    """Raises ConfigError naming the setting unless every value is valid and the combination works."""
    for f in dataclasses.fields(config):
        check_value(f.name, getattr(config, f.name))
    if config.block_size and config.sparsity_m_by_n:
        raise ConfigError("block_size and sparsity_m_by_n: give one, not both (tfmot would ignore block_size)")
    if config.train_file and not config.validation_file:
        raise ConfigError("train_file needs validation_file: the dev metrics are what a run reports")
    if config.train_file and not config.regression and config.labels is None:
        raise ConfigError("train_file: labels are unset (train.py reads them from the file)")
    for step_name, epoch_name in (("pruning_begin_step", "pruning_begin_epoch"),
                                  ("pruning_end_step", "pruning_end_epoch"),
                                  ("pruning_frequency", "pruning_frequency_epochs")):
        if getattr(config, step_name) is not None and getattr(config, epoch_name) is not None:
            raise ConfigError(f"{step_name} and {epoch_name}: give one (steps or epochs)")
    given = [name for name in ("pruning_frequency", "pruning_frequency_epochs") if getattr(config, name) is not None]
    if config.pruning_updates is not None and given:
        raise ConfigError(f"pruning_updates and {given[0]}: give one (how many updates, or how far apart)")
    if config.pruning_frequency_epochs == 0:
        raise ConfigError("pruning_frequency_epochs=0: expected a positive number of epochs")
    if config.learning_rate_schedule == "rewarm" and not (config.pruned and config.pruning_schedule ==
                                                         "polynomial_decay" and not config.sparsity_m_by_n):
        raise ConfigError("learning_rate_schedule=rewarm: re-warms at polynomial_decay's mask updates, so it "
                          "needs target_sparsity > 0, pruning_schedule polynomial_decay and no sparsity_m_by_n")
    if config.sparsity_ranking == "global" and (not config.pruned or config.sparsity_m_by_n):
        raise ConfigError("sparsity_ranking=global: needs target_sparsity > 0 and no sparsity_m_by_n "
                          "(whose sparsity is fixed at m/n)")
    if config.pruning_structure == "heads_and_neurons":
        given = [name for name in ("block_size", "sparsity_m_by_n", "prune_layers") if getattr(config, name)]
        given += [name for name in ("prune_pooler", "prune_word_embeddings") if getattr(config, name)]
        if given:
            raise ConfigError(f"pruning_structure=heads_and_neurons prunes every layer's heads and neurons: "
                              f"{', '.join(given)} only work with pruning_structure=weights")
    if config.pruning_score == "taylor" and not (config.pruned and config.pruning_structure == "heads_and_neurons"):
        raise ConfigError("pruning_score=taylor: scores heads and neurons, so it needs target_sparsity > 0 and "
                          "pruning_structure=heads_and_neurons (for single weights: pruning_score=fisher)")
    if config.pruning_score == "fisher" and not (config.pruned and config.pruning_structure == "weights"
                                                 and not config.sparsity_m_by_n):
        raise ConfigError("pruning_score=fisher: scores single weights, so it needs target_sparsity > 0, "
                          "pruning_structure=weights and no sparsity_m_by_n (for heads and neurons: "
                          "pruning_score=taylor)")
    if config.pruning_score == "fisher" and config.prune_word_embeddings:
        raise ConfigError("pruning_score=fisher with prune_word_embeddings: the rows of tokens that the 16 "
                          "scoring batches lack get no gradient and would go first; prune them by magnitude")
    if config.pruning_score != "magnitude" and config.distribution_strategy == "tpu":
        raise ConfigError(f"pruning_score={config.pruning_score}: scores in eager steps, which a TPU does not "
                          "run; use pruning_score=magnitude")
    if config.distribution_strategy == "tpu" and config.padding != "fixed":
        raise ConfigError("distribution_strategy tpu needs padding fixed (a TPU compiles one program a shape)")
