"""BertPreprocessor: raw text to the encoder's inputs, in-graph, with the ids of Google's tokenizer.

tensorflow-text's `BertTokenizer` is not Google's `FullTokenizer`. With lower_case it case-folds by
ICU's NFKC_Casefold (`µ` becomes `μ`, `²` `2`, `ﬁ` `fi`, `ß` `ss`, `ｆｕｌｌ` `full`, `Ⅻ` `xii`, a final
`ς` `σ`); in both modes it turns control and format characters into spaces where Google deletes
them (a zero-width space or a NUL splits a word), keeps U+FFFD, splits only on ASCII whitespace (not
on U+00A0, U+1680, U+2028, ...) and counts the 100-character limit of a word in bytes. So Google's
normalisation (`convert_to_unicode`, `_clean_text`, then `.lower()`, NFD and no Mn) is done here with
TensorFlow ops, text is split on spaces, punctuation and CJK characters with tensorflow-text's
patterns, long words become [UNK] by their characters, and WordPiece runs on the words.
"""

import tensorflow as tf
import tensorflow_text as tf_text
import tf_keras as keras

# The position embeddings of every BERT Google released hold 512 positions.
MAX_SEQ_LENGTH = 512
SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]")
# Google's WordpieceTokenizer: a longer word (in characters) is [UNK].
MAX_CHARS_PER_WORD = 100

# Google's _clean_text maps \t \n \r and Zs to a space; U+2028/U+2029 (Zl, Zp) survive it but
# str.split() splits on them, so they are whitespace too.
_WHITESPACE = r"[\t\n\r\p{Zs}\x{2028}\x{2029}]"
# Then it deletes NUL, U+FFFD and the other control (Cc) and format (Cf) characters.
_DELETED = r"[\p{Cc}\p{Cf}\x{FFFD}]"
# Google's _is_punctuation (ASCII symbols included) and _is_chinese_char, as tensorflow-text spells them.
_PUNCTUATION = r"[!-/:-@\[-`{-~\p{P}]"
_CJK = (r"[\x{4E00}-\x{9FFF}\x{3400}-\x{4DBF}\x{20000}-\x{2A6DF}\x{2A700}-\x{2B73F}\x{2B740}-\x{2B81F}"
        r"\x{2B820}-\x{2CEAF}\x{F900}-\x{FAFF}\x{2F800}-\x{2FA1F}]")


class PreprocessorError(ValueError):
    """A vocabulary or argument the preprocessor cannot work with."""


def read_vocab(vocab_file):
    """The vocabulary's tokens by id (one a line, as Google's load_vocab reads it)."""
    try:
        with tf.io.gfile.GFile(vocab_file, "r") as f:
            tokens = [line.rstrip("\n") for line in f]
    except tf.errors.NotFoundError:
        raise PreprocessorError(f"{vocab_file}: no such file (the WordPiece vocabulary)") from None
    ids = {token: i for i, token in enumerate(tokens)}
    missing = [token for token in SPECIAL_TOKENS if token not in ids]
    if missing:
        raise PreprocessorError(f"{vocab_file}: no {', '.join(missing)} token; a BERT vocabulary needs "
                                f"all of {', '.join(SPECIAL_TOKENS)}")
    if len(ids) != len(tokens):
        duplicate = next(token for i, token in enumerate(tokens) if ids[token] != i)
        raise PreprocessorError(f"{vocab_file}: token {duplicate!r} appears more than once")
    return ids


def truncated_pair_lengths(a, b, budget):
    """Google's _truncate_seq_pair in closed form: the kept lengths of segments of lengths a, b.

    The loop drops the last token of the longer segment (of B on a tie) until a + b <= budget.
    If the difference covers the excess, only the longer one loses tokens; otherwise both reach
    half the budget, A keeping the odd token.
    """
    excess = tf.maximum(a + b - budget, 0)
    a_cut, b_cut = a - b >= excess, b - a >= excess
    kept_a = tf.where(a_cut, a - excess, tf.where(b_cut, a, (budget + 1) // 2))
    kept_b = tf.where(b_cut, b - excess, tf.where(a_cut, b, budget // 2))
    return kept_a, kept_b


def _head(rt, n):
    """The first n[i] items of each row i of a ragged [batch, (items)]."""
    starts = rt.row_starts()
    return tf.gather(rt.values, tf.ragged.range(starts, starts + n))


@keras.utils.register_keras_serializable(package="bert_keras")
class BertPreprocessor(keras.layers.Layer):
    """Raw text to BERT's encoder inputs, as Google's run_classifier.py builds them.

    Args:
      vocab_file: str. The WordPiece vocabulary, one token a line; it becomes a SavedModel asset.
      lower_case: bool. Lower-case and strip accents, as for an uncased checkpoint.
      max_seq_length: int. Length of the padded outputs, 3 to 512.

    Call on a list of one or two string tensors [batch] (segments A and B). Returns a dict of int32
    [batch, max_seq_length]: `input_word_ids` (`[CLS] A [SEP] B [SEP]`, padded with [PAD]),
    `input_mask` (1 for a token, 0 for padding) and `input_type_ids` (0 for `[CLS] A [SEP]`,
    1 for `B [SEP]`). A pair too long loses tokens by Google's `_truncate_seq_pair`; a single
    segment keeps its first max_seq_length - 2. As in Google's `convert_single_example`, a B
    with no tokens (before or after truncation) is left out with its [SEP].

    The ops of tensorflow-text run in the graph: a process that loads a SavedModel holding this
    layer must `import tensorflow_text` first.
    """

    def __init__(self, vocab_file, lower_case, max_seq_length=128, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(max_seq_length, int) or not 3 <= max_seq_length <= MAX_SEQ_LENGTH:
            raise PreprocessorError(f"max_seq_length={max_seq_length!r}: expected an int from 3 "
                                    f"([CLS] A [SEP] with one token) to {MAX_SEQ_LENGTH} (BERT's positions)")
        ids = read_vocab(vocab_file)
        self.vocab_file = vocab_file
        self.lower_case = bool(lower_case)
        self.max_seq_length = max_seq_length
        self.pad_id, self.cls_id, self.sep_id = ids["[PAD]"], ids["[CLS]"], ids["[SEP]"]
        self.vocab = tf.lookup.StaticHashTable(
            tf.lookup.TextFileInitializer(vocab_file, tf.string, tf.lookup.TextFileIndex.WHOLE_LINE,
                                          tf.int64, tf.lookup.TextFileIndex.LINE_NUMBER),
            default_value=-1)
        # Words are at most MAX_CHARS_PER_WORD characters when they get here, so at most 4 bytes each.
        self.wordpiece = tf_text.WordpieceTokenizer(self.vocab, max_bytes_per_word=4 * MAX_CHARS_PER_WORD,
                                                    token_out_type=tf.int64, unknown_token="[UNK]")

    def _normalize(self, text):
        """Google's convert_to_unicode and _clean_text, then with lower_case `.lower()`, NFD, no Mn."""
        # Invalid UTF-8 bytes are dropped, as by Python's bytes.decode("utf-8", "ignore").
        text = tf.strings.unicode_transcode(text, "UTF-8", "UTF-8", errors="ignore")
        text = tf.strings.regex_replace(text, _WHITESPACE, " ")
        text = tf.strings.regex_replace(text, _DELETED, "")
        if self.lower_case:
            # ICU's full lower-casing, as Python's str.lower(): İ to i + U+0307, a final Σ to ς.
            text = tf.strings.lower(text, encoding="utf-8")
            text = tf_text.normalize_utf8(text, "NFD")
            text = tf.strings.regex_replace(text, r"\p{Mn}", "")
        return text

    def tokenize(self, text):
        """WordPiece ids of one segment: string [batch] to int32 ragged [batch, (tokens)]."""
        words = tf_text.regex_split(self._normalize(text), f" +|{_PUNCTUATION}|{_CJK}",
                                    f"{_PUNCTUATION}|{_CJK}")  # (batch, (words))
        too_long = tf.strings.length(words.flat_values, unit="UTF8_CHAR") > MAX_CHARS_PER_WORD
        words = words.with_flat_values(tf.where(too_long, "[UNK]", words.flat_values))
        pieces = self.wordpiece.tokenize(words)  # (batch, (words), (pieces))
        return tf.cast(pieces.merge_dims(1, 2), tf.int32)  # (batch, (tokens))

    def pack_ragged(self, inputs):
        """Like `call`, without padding: int32 ragged `input_word_ids` and `input_type_ids` [batch, (seq)]."""
        # A lone tensor is segment A: Keras unwraps one-element lists when it rebuilds a functional model.
        inputs = [inputs] if tf.is_tensor(inputs) else inputs
        if len(inputs) not in (1, 2):
            raise PreprocessorError(f"BertPreprocessor takes a list of 1 or 2 string tensors [batch] "
                                    f"(segments A and B), got {len(inputs)}")
        a = self.tokenize(inputs[0])  # (batch, (tokens))
        ones = tf.ones_like(a.row_lengths(), dtype=tf.int32)[:, None]  # (batch, 1)
        cls, sep = tf.RaggedTensor.from_tensor(ones * self.cls_id), tf.RaggedTensor.from_tensor(ones * self.sep_id)
        if len(inputs) == 1:
            first = tf.concat([cls, a[:, :self.max_seq_length - 2], sep], axis=1)
            return {"input_word_ids": first, "input_type_ids": tf.zeros_like(first)}
        b = self.tokenize(inputs[1])
        a_length, b_length = a.row_lengths(), b.row_lengths()  # (batch,)
        kept_a, kept_b = truncated_pair_lengths(a_length, b_length, self.max_seq_length - 3)
        kept_a = tf.where(b_length > 0, kept_a, tf.minimum(a_length, self.max_seq_length - 2))
        first = tf.concat([cls, _head(a, kept_a), sep], axis=1)
        second = _head(tf.concat([_head(b, kept_b), sep], axis=1), tf.where(kept_b > 0, kept_b + 1, 0))
        return {"input_word_ids": tf.concat([first, second], axis=1),
                "input_type_ids": tf.concat([tf.zeros_like(first), tf.ones_like(second)], axis=1)}

    def call(self, inputs):
        return self.pad(self.pack_ragged(inputs), self.max_seq_length)

    def pad(self, packed, seq_length=None):
        """`pack_ragged`'s output padded to int32 [batch, seq_length]; None pads to the batch's longest.
        seq_length may be a scalar tensor (a length computed in the graph)."""
        word_ids = packed["input_word_ids"]
        shape = [None, seq_length]
        if tf.is_tensor(seq_length):
            shape = tf.stack([word_ids.nrows(out_type=tf.int32), seq_length])
        return {"input_word_ids": word_ids.to_tensor(self.pad_id, shape=shape),  # (batch, seq)
                "input_mask": tf.ones_like(word_ids).to_tensor(0, shape=shape),
                "input_type_ids": packed["input_type_ids"].to_tensor(0, shape=shape)}

    def get_config(self):
        return {**super().get_config(), "vocab_file": self.vocab_file, "lower_case": self.lower_case,
                "max_seq_length": self.max_seq_length}
