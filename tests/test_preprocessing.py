"""BertPreprocessor against Google's tokenization.py (a compact copy below) and Hugging Face's tokenizer."""

import json
import os
import re
import shutil
import subprocess
import sys
import unicodedata

import numpy as np
import pytest

import bert_keras
import tensorflow as tf
import tf_keras as keras
from bert_keras.preprocessing import PreprocessorError
from conftest import SHARED

# --- Google's BasicTokenizer + WordpieceTokenizer (google-research/bert tokenization.py), the oracle ---

_CJK = ((0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F), (0x2B740, 0x2B81F),
        (0x2B820, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F))


def _is_punctuation(c):
    cp = ord(c)
    return (33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126
            or unicodedata.category(c).startswith("P"))


def google_words(text, lower_case):
    """BasicTokenizer.tokenize: _clean_text, _tokenize_chinese_chars, lower/NFD/no Mn, punctuation split."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "ignore")  # convert_to_unicode
    chars = []
    for c in text:
        if ord(c) in (0, 0xFFFD) or (c not in "\t\n\r" and unicodedata.category(c) in ("Cc", "Cf")):
            continue
        if c in " \t\n\r" or unicodedata.category(c) == "Zs":
            chars.append(" ")
        else:
            chars.append(f" {c} " if any(lo <= ord(c) <= hi for lo, hi in _CJK) else c)
    words = []
    for token in "".join(chars).split():
        if lower_case:
            token = "".join(c for c in unicodedata.normalize("NFD", token.lower()) if unicodedata.category(c) != "Mn")
        words.append("".join(f" {c} " if _is_punctuation(c) else c for c in token))
    return " ".join(words).split()


def google_wordpiece(word, vocab):
    """WordpieceTokenizer.tokenize of one word: greedy longest-match-first, [UNK] past 100 characters."""
    if len(word) > 100:
        return [vocab["[UNK]"]]
    ids, start = [], 0
    while start < len(word):
        for end in range(len(word), start, -1):
            piece = word[start:end] if start == 0 else "##" + word[start:end]
            if piece in vocab:
                ids.append(vocab[piece])
                start = end
                break
        else:
            return [vocab["[UNK]"]]
    return ids


def google_ids(text, vocab, lower_case):
    """FullTokenizer.tokenize, as ids."""
    return [i for word in google_words(text, lower_case) for i in google_wordpiece(word, vocab)]


def google_pack(a_ids, b_ids, max_seq_length, cls, sep):
    """run_classifier.convert_single_example: the (word ids, type ids) before padding; b_ids None for one segment."""
    a, b = list(a_ids), list(b_ids) if b_ids is not None else None
    if b:  # _truncate_seq_pair, the loop
        while len(a) + len(b) > max_seq_length - 3:
            (a if len(a) > len(b) else b).pop()
    else:
        a = a[:max_seq_length - 2]
    ids, types = [cls, *a, sep], [0] * (len(a) + 2)
    if b:
        ids, types = ids + b + [sep], types + [1] * (len(b) + 1)
    return ids, types


def load_vocab(path):
    with open(path, encoding="utf-8") as f:
        return {line.strip(): i for i, line in enumerate(f)}


# --- fixtures ---

# Each GLUE dev set: (header line?, text columns, rows). Split on tabs only: GLUE text has bare quotes.
GLUE_DEV = {"CoLA": (False, (3,), 1043), "SST-2": (True, (0,), 872), "MRPC": (True, (3, 4), 408),
            "STS-B": (True, (7, 8), 1500), "QNLI": (True, (1, 2), 5463), "RTE": (True, (1, 2), 277),
            "WNLI": (True, (1, 2), 71)}


@pytest.fixture(scope="module")
def glue_dev():
    """{task: list of segment tuples} for the real dev set of every GLUE task in ../shared/glue."""
    data = {}
    for task, (header, columns, count) in GLUE_DEV.items():
        with open(os.path.join(SHARED, "glue", task, "dev.tsv"), encoding="utf-8-sig") as f:
            rows = [line.rstrip("\n").split("\t") for line in f][1 if header else 0:]
        assert len(rows) == count, f"{task}/dev.tsv: {len(rows)} rows"
        data[task] = [tuple(row[c] for c in columns) for row in rows]
    return data


@pytest.fixture(scope="module")
def vocab_file(minilm_dir):
    return os.path.join(minilm_dir, "vocab.txt")  # bert-base-uncased's


@pytest.fixture(scope="module")
def vocab(vocab_file):
    return load_vocab(vocab_file)


@pytest.fixture(scope="module")
def preprocessor(vocab_file):
    return bert_keras.BertPreprocessor(vocab_file, lower_case=True, max_seq_length=128)


@pytest.fixture(scope="module")
def hf_tokenizer(minilm_dir):
    import transformers

    tokenizer = transformers.BertTokenizer.from_pretrained(minilm_dir)
    assert tokenizer.do_lower_case
    return lambda texts: tokenizer(list(texts), add_special_tokens=False)["input_ids"]


def tokenize(preprocessor, texts):
    return preprocessor.tokenize(tf.constant(texts, tf.string)).to_list()


# --- tokenization ---

HARD_CASES = [
    # lower-casing and accents: NFKC_Casefold would give μ, 2, ss, fi, xii, full-width → ASCII
    "µ-meter, x² + y³, ½", "Straße STRASSE ẞ", "İstanbul DİYARBAKIR ıI", "ﬁnance ﬂour ﬀ", "Ⅻ ⅻ Ⅸ chapter",
    "ｆｕｌｌｗｉｄｔｈ ＡＢＣ！？", "𝐀𝐁𝐂 Ⓐ ㎏ ŉ Ǆ K Å Ω", "café Ångström niño naïve Éire Ά",
    "cafe\u0301 a\u0308\u0304 n\u0303 q\u0323\u0307", "ΟΔΟΣ ΣΟΦΟΣ. ΑΣ.Α Σ ΌΣΟΣ",
    # format, control and replacement characters; whitespace
    "zero\u200bwidth soft\u00adhyphen bom\ufeffx lrm\u200ex rtl\u202bx", "😀 👍🏽 👨\u200d👩\u200d👧 ❤️",
    "nul\x00byte repl\ufffdchar bell\x07 del\x7f c1\x85x \x80\x99", "tab\tnew\nline\r\nend\x0bvt\x0cff\x1cfs",
    "no\u00a0break thin\u2009space ideo\u3000space line\u2028sep para\u2029sep ogham\u1680x nnbsp\u202fx",
    "", "   \t\n ", "\x00\u200b\ufffd",
    # CJK (split per character) and other scripts (not)
    "中文字符测试，漢字。", "𠀀𠀁 ext-B 𪜀 ext-C", "豈更 compat \U0002F800", "ひらがな カタカナ ｶﾀｶﾅ",
    "한국어 텍스트", "العربية مَرْحَبًا", "हिन्दी नमस्ते", "ภาษาไทย", "Ελληνικά Кириллица",
    # Google's ASCII punctuation that Unicode calls symbols; Unicode symbols that are not punctuation
    "a~b`c^d$e+f<g=h>i|j", "€100 ©2020 30° ±5 ¬ ¦ ¨ § ¶ ¿¡ « » — … ‘’ “”", "don't U.S.A. e-mail #tag @user 3.14",
    # words near the 100-character limit: characters count, not bytes
    "a" * 100, "a" * 101, "ж" * 100, "ж" * 101, "x" * 99 + "ж", "É" * 101, "é" * 60 + " ok",
    # invalid UTF-8 is dropped, as by bytes.decode("utf-8", "ignore")
    b"a\xffb c\xe2\x82d", b"\xed\xa0\x80x \xc0\x80y \xf4\x90\x80\x80z ok \xc3\xa9",
]

# Where Hugging Face's tokenizer (the Rust `tokenizers` BertNormalizer/BertPreTokenizer) departs from
# Google's tokenization.py; ours follows Google.
HF_DIFFERS = {
    # tokenizers lower-cases char by char; Python's str.lower() writes a final Σ as ς.
    "ΟΔΟΣ ΣΟΦΟΣ. ΑΣ.Α Σ ΌΣΟΣ": "final sigma",
    # tokenizers matches special tokens in the text; Google splits the brackets off as punctuation.
    "[CLS] x [SEP] [MASK] [UNK] [PAD]": "special tokens in text",
    # tokenizers deletes every C* character; Google's _is_control only Cc and Cf.
    "a\ue000b \U000f0000": "private use",
    # tokenizers' CJK Extension E range starts at 0x2B920; Google's at 0x2B820.
    "\U0002B820\U0002B821 x": "CJK extension E",
    # tokenizers' Unicode tables predate U+2E5D OBLIQUE HYPHEN (Pd, Unicode 14).
    "a\u2e5db": "Unicode 14 punctuation",
}


def test_hard_cases_match_google_and_hf(preprocessor, vocab, hf_tokenizer):
    texts = HARD_CASES + list(HF_DIFFERS)
    ours = tokenize(preprocessor, texts)
    for text, ids in zip(texts, ours, strict=True):
        assert ids == google_ids(text, vocab, lower_case=True), repr(text)
    strings = [t.decode("utf-8", "ignore") if isinstance(t, bytes) else t for t in texts]
    for text, ids, hf_ids in zip(texts, ours, hf_tokenizer(strings), strict=True):
        if text in HF_DIFFERS:
            assert ids != hf_ids, f"{text!r}: Hugging Face no longer differs ({HF_DIFFERS[text]})"
        else:
            assert ids == hf_ids, repr(text)


def test_known_ids(preprocessor, vocab):
    """A few spelled out: what Google's rules give where NFKC_Casefold would not."""
    inverse = {i: token for token, i in vocab.items()}
    tokens = [[inverse[i] for i in ids] for ids in tokenize(preprocessor, [
        "µ²", "ΟΔΟΣ", "zero\u200bwidth", "a<b", "ж" * 101, "Straße"])]
    assert tokens == [["µ", "##²"], ["ο", "##δ", "##ος"], ["zero", "##wi", "##dt", "##h"], ["a", "<", "b"], ["[UNK]"],
                      ["st", "##raße"]]


def test_cased_vocab(tmp_path):
    """lower_case=False: no lower-casing, no NFD, no accent stripping; cleaning and splitting as before."""
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "Hello", "hello", "World", "Café", "Caf", "##é", "##e", "İ",
              "Straße", "ΟΔΟΣ", "µ", "!", ",", "中", "##s", "ﬁ", "K"]
    path = tmp_path / "vocab.txt"
    path.write_text("\n".join(tokens) + "\n", encoding="utf-8")
    preprocessor = bert_keras.BertPreprocessor(str(path), lower_case=False, max_seq_length=16)
    texts = ["Hello, World! hello", "Café Cafe\u0301 CAFÉ", "İ Straße ΟΔΟΣ µ ﬁ K", "Hello\u200bs 中中",
             "Worlds hello\u00a0World"]
    vocab = {token: i for i, token in enumerate(tokens)}
    ours = tokenize(preprocessor, texts)
    assert ours == [google_ids(text, vocab, lower_case=False) for text in texts]
    assert [[tokens[i] for i in ids] for ids in ours] == [
        ["Hello", ",", "World", "!", "hello"], ["Café", "[UNK]", "[UNK]"], ["İ", "Straße", "ΟΔΟΣ", "µ", "ﬁ", "K"],
        ["Hello", "##s", "中", "中"], ["World", "##s", "hello", "World"]]


@pytest.mark.parametrize("lower_case", [True, False])
def test_every_code_point(tmp_path, lower_case):
    """Each code point alone, against Google's rules, with a vocab that holds every word they give.

    Allowed to differ: code points Python's unicodedata does not know, and those that TensorFlow's
    ICU (which lower-cases) does not know yet (its script is Unknown): Unicode-version gaps only.
    """
    code_points = [cp for cp in range(1, 0x110000) if not 0xD800 <= cp <= 0xDFFF]
    texts = [chr(cp) for cp in code_points]
    words = [google_words(text, lower_case) for text in texts]
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", *sorted({w for ws in words for w in ws})]
    path = tmp_path / "vocab.txt"
    path.write_text("\n".join(tokens) + "\n", encoding="utf-8")
    vocab = {token: i for i, token in enumerate(tokens)}
    preprocessor = bert_keras.BertPreprocessor(str(path), lower_case=lower_case)
    ours = [ids for start in range(0, len(texts), 200_000)
            for ids in tokenize(preprocessor, texts[start:start + 200_000])]
    differ = [cp for cp, ws, ids in zip(code_points, words, ours, strict=True) if ids != [vocab[w] for w in ws]]
    unknown_to_icu = tf.strings.unicode_script(tf.constant(differ, tf.int32)).numpy() == 103  # USCRIPT_UNKNOWN
    unexplained = [hex(cp) for cp, unknown in zip(differ, unknown_to_icu, strict=True)
                   if unicodedata.category(chr(cp)) != "Cn" and not unknown]
    print(f"{len(differ)} code points differ, {len(unexplained)} of them known to Python's and TF's tables")
    assert not unexplained


def test_glue_dev_matches_hf(preprocessor, glue_dev, hf_tokenizer):
    """Every segment of every real GLUE dev set: the WordPiece ids of Hugging Face's tokenizer."""
    texts = [text for rows in glue_dev.values() for row in rows for text in row]
    assert len(texts) == 17353
    ours = tokenize(preprocessor, texts)
    differ = [text for text, ids, hf_ids in zip(texts, ours, hf_tokenizer(texts), strict=True) if ids != hf_ids]
    assert not differ, differ[:3]


# --- packing ---

@pytest.mark.parametrize("max_seq_length", [32, 128])
def test_glue_dev_packing(vocab_file, vocab, glue_dev, hf_tokenizer, max_seq_length):
    """[CLS] A [SEP] B [SEP], segment ids, mask, padding and truncation: Google's convert_single_example."""
    preprocessor = bert_keras.BertPreprocessor(vocab_file, lower_case=True, max_seq_length=max_seq_length)
    cls, sep, truncated = vocab["[CLS]"], vocab["[SEP]"], 0
    for task, rows in glue_dev.items():
        segments = list(zip(*rows))
        inputs = [tf.constant(s) for s in segments]
        outputs = {k: v.numpy() for k, v in preprocessor(inputs).items()}
        ragged = {k: v.to_list() for k, v in preprocessor.pack_ragged(inputs).items()}
        ids = list(zip(*(hf_tokenizer(s) for s in segments)))
        for i, row_ids in enumerate(ids):
            want_ids, want_types = google_pack(row_ids[0], row_ids[1] if len(row_ids) == 2 else None,
                                               max_seq_length, cls, sep)
            truncated += sum(map(len, row_ids)) + len(row_ids) + 1 > max_seq_length
            n = len(want_ids)
            assert ragged["input_word_ids"][i] == want_ids and ragged["input_type_ids"][i] == want_types, (task, i)
            assert outputs["input_word_ids"][i].tolist() == want_ids + [0] * (max_seq_length - n), (task, i)
            assert outputs["input_type_ids"][i].tolist() == want_types + [0] * (max_seq_length - n), (task, i)
            assert outputs["input_mask"][i].tolist() == [1] * n + [0] * (max_seq_length - n), (task, i)
        assert all(v.dtype == np.int32 and v.shape == (len(rows), max_seq_length) for v in outputs.values())
    print(f"max_seq_length={max_seq_length}: {truncated} examples truncated")
    assert truncated > (3000 if max_seq_length == 32 else 50)


@pytest.mark.parametrize("max_seq_length", [3, 4, 5, 12])
def test_truncation_every_length_pair(vocab_file, vocab, max_seq_length):
    """Every pair of lengths up to past the budget, ties and empty segments included, against the loop."""
    preprocessor = bert_keras.BertPreprocessor(vocab_file, lower_case=True, max_seq_length=max_seq_length)
    lengths = [(la, lb) for la in range(15) for lb in range(15)]
    a = tf.constant([" ".join(["a"] * la) for la, _ in lengths])
    b = tf.constant([" ".join(["b"] * lb) for _, lb in lengths])
    got = {k: v.to_list() for k, v in preprocessor.pack_ragged([a, b]).items()}
    single = preprocessor.pack_ragged([a])["input_word_ids"].to_list()
    cls, sep, a_id, b_id = vocab["[CLS]"], vocab["[SEP]"], vocab["a"], vocab["b"]
    for i, (la, lb) in enumerate(lengths):
        assert (got["input_word_ids"][i], got["input_type_ids"][i]) == google_pack(
            [a_id] * la, [b_id] * lb, max_seq_length, cls, sep), (la, lb)
        assert single[i] == google_pack([a_id] * la, None, max_seq_length, cls, sep)[0], la


# --- Keras, tf.data, SavedModel ---

def test_tf_data(preprocessor):
    sentences = {"sentence1": ["The cat sat.", "Straße ΟΔΟΣ", "", "a b c"], "sentence2": ["On the mat.", "", "x", "d"]}
    dataset = tf.data.Dataset.from_tensor_slices(sentences).batch(3)
    batches = list(dataset.map(lambda x: preprocessor([x["sentence1"], x["sentence2"]])))
    direct = preprocessor([tf.constant(sentences["sentence1"]), tf.constant(sentences["sentence2"])])
    for key, value in direct.items():
        assert batches[0][key].shape == (3, 128)
        np.testing.assert_array_equal(np.concatenate([batch[key] for batch in batches]), value)


def test_pad_to_the_longest_is_the_fixed_padding_cut_short(preprocessor):
    """pad(packed): [batch, longest] (what the SavedModel serves), equal to call()'s first columns."""
    texts = [tf.constant(["The cat sat.", "A much longer sentence, with a clause or two."]), tf.constant(["On.", "x"])]
    fixed = preprocessor(texts)
    short = preprocessor.pad(preprocessor.pack_ragged(texts))
    longest = int(fixed["input_mask"].numpy().sum(1).max())
    for key, value in short.items():
        assert value.shape == (2, longest) and value.dtype == tf.int32
        np.testing.assert_array_equal(value, fixed[key][:, :longest])


def test_config_round_trip(preprocessor):
    config = preprocessor.get_config()
    assert {k: config[k] for k in ("vocab_file", "lower_case", "max_seq_length")} == {
        "vocab_file": preprocessor.vocab_file, "lower_case": True, "max_seq_length": 128}
    restored = bert_keras.BertPreprocessor.from_config(json.loads(json.dumps(config)))
    assert json.dumps(restored.get_config(), sort_keys=True) == json.dumps(config, sort_keys=True)
    text = [tf.constant(["Hello there!", "ΟΔΟΣ"])]
    expected = preprocessor(text)
    for key, value in restored(text).items():
        np.testing.assert_array_equal(value, expected[key])
    # Rebuilding a functional model (clone_model, from_config, load_model) calls the layer on a lone tensor.
    inputs = [keras.Input(shape=(), dtype=tf.string)]
    clone = keras.models.clone_model(keras.Model(inputs, preprocessor(inputs)))
    for key, value in clone(text).items():
        np.testing.assert_array_equal(value, expected[key])


_LOAD_IN_FRESH_PROCESS = """
import json, sys
import tensorflow as tf
import tensorflow_text  # registers the ops the SavedModel uses
loaded = tf.saved_model.load(sys.argv[1])
outputs = loaded([tf.constant(json.loads(sys.argv[2])), tf.constant(json.loads(sys.argv[3]))])
print(json.dumps({key: value.numpy().tolist() for key, value in outputs.items()}))
"""


def test_saved_model_in_fresh_process(tmp_path, vocab_file):
    """Saved with model.save, moved away from its vocab, loaded where only TF and tensorflow-text are imported."""
    own_vocab = tmp_path / "vocab.txt"
    shutil.copy(vocab_file, own_vocab)
    preprocessor = bert_keras.BertPreprocessor(str(own_vocab), lower_case=True, max_seq_length=24)
    inputs = [keras.Input(shape=(), dtype=tf.string, name=name) for name in ("sentence1", "sentence2")]
    keras.Model(inputs, preprocessor(inputs)).save(str(tmp_path / "saved"), save_format="tf")
    assert os.listdir(tmp_path / "saved" / "assets") == ["vocab.txt"]
    first = ["The cat sat on the mat.", "Straße ΟΔΟΣ µ² 中文", "a " * 40]
    second = ["", "café naïve", "b " * 5]
    expected = preprocessor([tf.constant(first), tf.constant(second)])
    own_vocab.unlink()
    shutil.move(tmp_path / "saved", tmp_path / "moved")
    result = subprocess.run([sys.executable, "-c", _LOAD_IN_FRESH_PROCESS, str(tmp_path / "moved"),
                             json.dumps(first), json.dumps(second)], capture_output=True, text=True, check=False,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert result.returncode == 0, result.stderr[-3000:]
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert loaded == {key: value.numpy().tolist() for key, value in expected.items()}


# --- errors ---

def test_errors(tmp_path, vocab_file):
    missing = tmp_path / "nowhere" / "vocab.txt"
    with pytest.raises(PreprocessorError, match=re.escape(f"{missing}: no such file")):
        bert_keras.BertPreprocessor(str(missing), lower_case=True)
    no_cls = tmp_path / "no_cls.txt"
    no_cls.write_text("[PAD]\n[UNK]\n[SEP]\nhello\n", encoding="utf-8")
    with pytest.raises(PreprocessorError, match=r"no_cls.txt: no \[CLS\] token"):
        bert_keras.BertPreprocessor(str(no_cls), lower_case=True)
    duplicate = tmp_path / "duplicate.txt"
    duplicate.write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\nhello\nhello\n", encoding="utf-8")
    with pytest.raises(PreprocessorError, match="'hello' appears more than once"):
        bert_keras.BertPreprocessor(str(duplicate), lower_case=True)
    for bad in (2, 513, 128.0):
        with pytest.raises(PreprocessorError, match=f"max_seq_length={bad!r}: expected an int from 3 .* to 512"):
            bert_keras.BertPreprocessor(vocab_file, lower_case=True, max_seq_length=bad)
    preprocessor = bert_keras.BertPreprocessor(vocab_file, lower_case=True)
    text = tf.constant(["hello"])
    for inputs in ([], [text] * 3):
        with pytest.raises(PreprocessorError, match=f"a list of 1 or 2 string tensors .*, got {len(inputs)}"):
            preprocessor(inputs)
