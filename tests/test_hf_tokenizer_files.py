"""Any Hugging Face tokenizer.json loads as a hanformer tokenizer: XLM-R's SentencePiece Unigram,
RoBERTa's byte-level BPE and ELECTRA's WordPiece, built offline with `tokenizers`. Special tokens,
ids (against transformers), offsets and word ids, the RoBERTa frame fine-tuning puts around texts,
saving back, and the Kiwi morpheme split in front of each file's own word split."""

from __future__ import annotations

import importlib.util
import json
import shutil

import pytest

transformers = pytest.importorskip("transformers")
transformers.logging.set_verbosity_error()

from tokenizers import Tokenizer as Engine  # noqa: E402
from tokenizers import models, pre_tokenizers  # noqa: E402

from _hf_families import BUILDERS, EXPECTED_SPECIALS, save_tokenizer  # noqa: E402
from hanformer.errors import InputError  # noqa: E402
from hanformer.tasks.encoding import PieceEncoder, encode_text_examples  # noqa: E402
from hanformer.tasks.examples import Answer, QAExample, TextExample  # noqa: E402
from hanformer.tasks.qa import QASettings, encode_qa_examples  # noqa: E402
from hanformer.tokenization.tokenizer import Tokenizer  # noqa: E402

TEXT, PAIR = "이순신은 학교에서 공부했다", "Seoul is the capital"


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """kind -> (folder saved by transformers, folder with nothing but tokenizer.json, transformers' tokenizer)."""
    out = {}
    for kind, build in BUILDERS.items():
        saved = tmp_path_factory.mktemp(f"{kind}-saved")
        fast = save_tokenizer(transformers, kind, build(), saved)
        bare = tmp_path_factory.mktemp(f"{kind}-bare")
        shutil.copyfile(saved / "tokenizer.json", bare / "tokenizer.json")
        out[kind] = (saved, bare, fast)
    return out


@pytest.mark.parametrize("which", ["saved", "bare"])
@pytest.mark.parametrize("kind", list(BUILDERS))
def test_special_tokens_come_from_the_config_or_the_file_itself(folders, kind, which):
    saved, bare, fast = folders[kind]
    tok = Tokenizer.from_pretrained(saved if which == "saved" else bare)
    assert (tok.unk_token, tok.cls_token, tok.sep_token, tok.pad_token, tok.mask_token) == EXPECTED_SPECIALS[kind]
    assert (tok.cls_token_id, tok.sep_token_id, tok.pad_token_id, tok.mask_token_id) == (
        fast.cls_token_id, fast.sep_token_id, fast.pad_token_id, fast.mask_token_id)


@pytest.mark.parametrize("kind", list(BUILDERS))
def test_ids_equal_transformers_for_texts_and_pairs(folders, kind):
    saved, _, fast = folders[kind]
    tok = Tokenizer.from_pretrained(saved)
    ours = tok([TEXT, "Seoul"], [PAIR, "이순신"], return_tensors=None)
    reference = fast([TEXT, "Seoul"], [PAIR, "이순신"], padding=True)
    assert ours["input_ids"] == reference["input_ids"]
    assert ours["attention_mask"] == reference["attention_mask"]
    assert tok.encode(TEXT).ids == fast(TEXT)["input_ids"]


@pytest.mark.parametrize("kind", list(BUILDERS))
def test_offsets_cover_each_word_and_word_ids_number_them(folders, kind):
    tok = Tokenizer.from_pretrained(folders[kind][0])
    enc = tok.encode(TEXT, add_special_tokens=False)
    words = TEXT.split()
    starts = [TEXT.index(w) for w in words]
    for w, (word, start) in enumerate(zip(words, starts, strict=True)):
        spans = [o for o, i in zip(enc.offsets, enc.word_ids, strict=True) if i == w]
        covered = {c for s, e in spans for c in range(s, e) if not TEXT[c].isspace()}
        assert covered == set(range(start, start + len(word))), (kind, spans)


def test_roberta_frame_for_pairs_and_bert_frame_for_wordpiece(folders):
    roberta = PieceEncoder(Tokenizer.from_pretrained(folders["byte-bpe"][0]))
    assert roberta.frame([10, 11], [12]) == ([0, 10, 11, 2, 2, 12, 2], [0] * 7)
    bert = PieceEncoder(Tokenizer.from_pretrained(folders["wordpiece"][0]))
    assert bert.frame([10, 11], [12]) == ([2, 10, 11, 3, 12, 3], [0, 0, 0, 0, 1, 1])
    features = encode_text_examples(roberta, [TextExample(TEXT * 3, PAIR * 3, None, "x")], 20, None)
    assert len(features[0]["input_ids"]) == 20  # four special tokens counted, not three


@pytest.mark.parametrize("kind", ["unigram", "byte-bpe"])
def test_qa_windows_point_at_the_answer_behind_the_double_separator(folders, kind):
    encoder = PieceEncoder(Tokenizer.from_pretrained(folders[kind][0]))
    context = "서울은 대한민국의 수도이다. 이순신은 조선 중기의 무신이다."
    answer = "조선"  # a whole word: byte-level pieces may join the syllables inside one
    example = QAExample("q1", "수도는?", context, [Answer(answer, context.index(answer))])
    feature = encode_qa_examples(encoder, [example], QASettings(max_length=128))[0]
    ids, offsets = feature["input_ids"], feature["offsets"]
    first = next(i for i, o in enumerate(offsets) if o is not None)
    assert ids[first - 2:first] == [encoder.sep_id, encoder.sep_id]  # `</s></s>` before the context
    start, end = feature["start_positions"], feature["end_positions"]
    assert context[offsets[start][0]:offsets[end][1]].strip() == answer


@pytest.mark.parametrize("kind", list(BUILDERS))
def test_saved_folder_loads_in_transformers_with_the_same_ids(folders, kind, tmp_path):
    saved, _, fast = folders[kind]
    Tokenizer.from_pretrained(folders[kind][1]).save_pretrained(tmp_path)  # from the bare tokenizer.json
    config = json.loads((tmp_path / "tokenizer_config.json").read_text())
    assert config["tokenizer_class"] == ("BertTokenizer" if kind == "wordpiece" else "PreTrainedTokenizerFast")
    assert (config["cls_token"], config["pad_token"]) == (EXPECTED_SPECIALS[kind][1], EXPECTED_SPECIALS[kind][3])
    back = transformers.AutoTokenizer.from_pretrained(tmp_path)
    assert back(TEXT, PAIR)["input_ids"] == fast(TEXT, PAIR)["input_ids"]
    assert Tokenizer.from_pretrained(tmp_path).encode(TEXT, PAIR).ids == fast(TEXT, PAIR)["input_ids"]


def test_a_file_without_any_usual_special_token_names_the_fix(tmp_path):
    engine = Engine(models.WordLevel({"가": 0, "나": 1, "<oov>": 2}, unk_token="<oov>"))
    engine.pre_tokenizer = pre_tokenizers.Whitespace()
    engine.save(str(tmp_path / "tokenizer.json"))
    with pytest.raises(InputError, match=r"missing the special tokens \[CLS\], \[SEP\].*tokenizer_config.json"):
        Tokenizer.from_pretrained(tmp_path)


@pytest.mark.skipif(importlib.util.find_spec("kiwipiepy") is None, reason="kiwipiepy is not installed")
@pytest.mark.parametrize("kind", ["unigram", "byte-bpe"])
def test_morpheme_split_runs_before_the_files_own_word_split(folders, kind):
    base = Tokenizer.from_pretrained(folders[kind][0])
    split = Tokenizer(Engine.from_str(base.backend.to_str()), morpheme_split=True, unk_token=base.unk_token,
                      cls_token=base.cls_token, sep_token=base.sep_token, pad_token=base.pad_token)
    text = "학교에서 공부했다"
    enc = split.encode(text, add_special_tokens=False)
    assert split.decode(enc.ids).replace(" ", "") == text.replace(" ", "")  # bytes / pieces still valid
    assert len(set(enc.word_ids)) > len(text.split())  # 학교|에서 ... are separate words now
    # Only real spaces mark a word start: the particle is a continuation piece, as in WordPiece.
    starts = [t for t in enc.tokens if t.startswith(("▁", "Ġ"))]
    assert len(starts) == (1 if kind == "unigram" else 0) + 1
