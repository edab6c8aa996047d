"""Entity-aware BERT: entity detection (Kiwi), markers and entity ids on pieces with the original
offsets kept, the zero-initialised entity embedding, checkpoints, the missing-ids error, and a
tiny `finetune --entities kiwi` on KorQuAD-style data that `predict` then answers through."""

from __future__ import annotations

import json

import pytest
import torch

from _tiny_checkpoints import make_checkpoint, make_tokenizer
from hanformer.cli.main import main
from hanformer.entities.config import EntityConfig
from hanformer.entities.marking import ENTITY_END, ENTITY_START, mark_pieces, piece_ranges
from hanformer.entities.model import add_entity_embedding, prepare_entity_model
from hanformer.entities.spans import EntitySpan, merged_spans
from hanformer.entities.tokens import entity_tokenizer, recorded_entity_config
from hanformer.errors import ConfigError, InputError
from hanformer.models.bert.config import BertConfig
from hanformer.models.bert.family import EncoderFamilyConfig
from hanformer.models.bert.heads import BertForQuestionAnswering, BertForSequenceClassification
from hanformer.models.registry import task_class
from hanformer.serving.config import ServeConfig
from hanformer.serving.engine import InferenceEngine
from hanformer.tasks.answer_types import scores_by_answer_type
from hanformer.tasks.encoding import (
    PieceEncoder,
    collate,
    encode_text_examples,
    encode_token_examples,
)
from hanformer.tasks.evaluate import evaluate
from hanformer.tasks.examples import Answer, QAExample, TextExample, TokenExample
from hanformer.tasks.finetune_config import DataConfig, read_examples
from hanformer.tasks.qa import QASettings, encode_qa_examples
from hanformer.tasks.registry import get_task
from hanformer.tokenization.tokenizer import Tokenizer

COMMON = ["--threads", "1", "--no-progress", "--no-tensorboard", "--eval-batch-size", "16"]


class FixedSpans:
    """A detector that returns given spans (by text), so marking is tested apart from Kiwi."""

    def __init__(self, spans: dict[str, list[tuple[int, int]]]) -> None:
        self.spans = spans

    def detect(self, texts):
        return [[EntitySpan(s, e, "X") for s, e in self.spans.get(t, [])] for t in texts]


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    return make_tokenizer(tmp_path_factory.mktemp("entity-tok"))


@pytest.fixture(scope="module")
def marked_tokenizer(tokenizer):
    return entity_tokenizer(tokenizer, EntityConfig(entities="kiwi"))


def _tiny_config(vocab_size: int, **extra) -> BertConfig:
    return BertConfig.preset("tiny", vocab_size=vocab_size, num_hidden_layers=2, hidden_size=32,
                             num_attention_heads=4, intermediate_size=64, max_position_embeddings=128, **extra)


# --- spans and markers ------------------------------------------------------------------------

def test_overlapping_and_nested_spans_merge_touching_ones_stay_apart():
    assert merged_spans([(5, 9), (0, 3), (6, 8), (3, 4), (2, 2)]) == [(0, 3), (3, 4), (5, 9)]


TEXT = "이순신은 조선 중기의 무신이다 서울부산"
CASES = {
    "start and end": [(0, 3), (TEXT.index("서울"), len(TEXT))],
    "adjacent": [(TEXT.index("서울"), TEXT.index("부산")), (TEXT.index("부산"), len(TEXT))],
    "nested-looking": [(5, 10), (5, 7), (8, 10)],
    "inside a word": [(1, 2)],
    "whitespace only": [(4, 5)],
}


@pytest.mark.parametrize("case", list(CASES))
def test_markers_keep_every_piece_and_its_offsets(marked_tokenizer, case):
    spans = CASES[case]
    plain = PieceEncoder(marked_tokenizer, EntityConfig()).pieces([TEXT])[0]  # entities off
    encoder = PieceEncoder(marked_tokenizer, EntityConfig(entities="kiwi"), FixedSpans({TEXT: spans}))
    marked = encoder.pieces([TEXT])[0]
    start_id, end_id = (marked_tokenizer.convert_tokens_to_ids(t) for t in (ENTITY_START, ENTITY_END))
    assert encoder.marker_ids == {start_id, end_id}
    kept = [(i, o) for i, o in zip(marked.ids, marked.offsets, strict=True) if i not in encoder.marker_ids]
    # Removing the markers gives back the plain pieces with the same offsets into the original text.
    assert kept == list(zip(plain.ids, plain.offsets, strict=True))
    ranges = piece_ranges(plain.offsets, spans)
    assert marked.ids.count(start_id) == marked.ids.count(end_id) == len(ranges)
    assert sum(marked.entity_ids) == sum(last + 1 - first for first, last in ranges)
    # Every [ENT] ... [/ENT] encloses the characters of an entity: its zero-width offsets sit at the
    # edges of the pieces it wraps, and the pieces in between are marked as entity pieces.
    opened = None
    for k, (piece, (s, e)) in enumerate(zip(marked.ids, marked.offsets, strict=True)):
        if piece == start_id:
            assert s == e and marked.entity_ids[k] == 0
            opened = (k, s)
        elif piece == end_id:
            assert s == e and opened is not None
            inner = list(range(opened[0] + 1, k))
            assert inner and all(marked.entity_ids[j] == 1 for j in inner)
            assert marked.offsets[inner[0]][0] == opened[1] and marked.offsets[inner[-1]][1] == e
            covered = TEXT[opened[1]:e]
            assert any(covered.find(TEXT[a:b]) >= 0 for a, b in merged_spans(spans) if a >= opened[1])
            opened = None
    assert opened is None
    if case == "whitespace only":
        assert marked.ids == plain.ids
    if case == "adjacent":  # two entities in one word: apart unless a piece straddles them
        assert len(ranges) in (1, 2)


def test_marking_without_markers_gives_entity_ids_only():
    offsets = [(0, 3), (3, 4), (5, 7)]
    out = mark_pieces([10, 11, 12], offsets, [(0, 3), (5, 6)], None)
    assert out.ids == [10, 11, 12] and out.offsets == offsets and out.entity_ids == [1, 0, 1]


def test_qa_features_mark_question_and_context_and_answers_stay_in_the_context(marked_tokenizer):
    context = "이순신은 조선 중기의 무신이다. 서울은 대한민국의 수도이다."
    question = "이순신은 누구인가?"
    spans = {context: [(0, 3), (5, 7), (context.index("서울"), context.index("서울") + 2)], question: [(0, 3)]}
    encoder = PieceEncoder(marked_tokenizer, EntityConfig(entities="kiwi"), FixedSpans(spans))
    answer = context.index("조선")
    example = QAExample("q", question, context, [Answer("조선 중기", answer)])
    settings = QASettings(max_length=24, doc_stride=4)
    features = encode_qa_examples(encoder, [example], settings)
    plain_answers = {context[f["offsets"][f["start_positions"]][0]:f["offsets"][f["end_positions"]][1]]
                     for f in encode_qa_examples(PieceEncoder(marked_tokenizer, EntityConfig()), [example], settings)
                     if f["start_positions"]}
    assert len(features) > 1  # several windows
    for f in features:
        assert len(f["entity_ids"]) == len(f["input_ids"]) == len(f["offsets"])
        for piece, offset in zip(f["input_ids"], f["offsets"], strict=True):
            if piece in encoder.marker_ids:
                assert offset is None
        if f["start_positions"]:  # the gold span covers the same characters as without entities
            s, e = f["offsets"][f["start_positions"]][0], f["offsets"][f["end_positions"]][1]
            assert context[s:e] in plain_answers and context[s:e].startswith("조선 중기")
    assert any(f["start_positions"] for f in features)
    q_part = features[0]["input_ids"][: features[0]["input_ids"].index(encoder.sep_id)]
    assert encoder.marker_ids & set(q_part)  # the question is marked too
    batch = collate(features, encoder.pad_id)
    assert batch["entity_ids"].shape == batch["input_ids"].shape


def test_ner_and_text_features_keep_markers_and_label_only_units(marked_tokenizer):
    text = "김철수는 서울에 간다"
    encoder = PieceEncoder(marked_tokenizer, EntityConfig(entities="kiwi"), FixedSpans({text: [(0, 3), (5, 7)]}))
    spans = [(i, i + 1) for i in range(len(text))]
    tags = ["B-PS", "I-PS", "I-PS"] + ["O"] * (len(text) - 3)
    f = encode_token_examples(encoder, [TokenExample(text, spans, tags, "t")], 64, {"O": 0, "B-PS": 1, "I-PS": 2})[0]
    markers = [k for k, i in enumerate(f["input_ids"]) if i in encoder.marker_ids]
    assert len(markers) == 4 and all(f["labels"][k] == -100 and f["piece_units"][k] == -1 for k in markers)
    assert len(f["entity_ids"]) == len(f["input_ids"])
    g = encode_text_examples(encoder, [TextExample(text, text, "1", "t")], 64, {"0": 0, "1": 1})[0]
    assert len(g["entity_ids"]) == len(g["input_ids"]) and sum(g["entity_ids"]) > 0


def test_entity_settings_travel_with_the_tokenizer(tmp_path, tokenizer):
    config = EntityConfig(entities="kiwi", entity_tags=["NNP", "SL"], entity_embedding=False)
    marked = entity_tokenizer(tokenizer, config)
    assert marked.vocab_size == tokenizer.vocab_size + 2 and recorded_entity_config(tokenizer) is None
    marked.save_pretrained(tmp_path)
    back = Tokenizer.from_pretrained(tmp_path)
    assert recorded_entity_config(back) == config
    assert PieceEncoder(back).entities is not None  # evaluate / predict / serve pick it up unasked


# --- the model --------------------------------------------------------------------------------

def test_zero_entity_embedding_changes_nothing(tokenizer):
    torch.manual_seed(0)
    plain = BertForSequenceClassification(_tiny_config(tokenizer.vocab_size)).eval()
    aware = BertForSequenceClassification(_tiny_config(tokenizer.vocab_size, entity_type_vocab_size=2)).eval()
    missing, unexpected = aware.load_state_dict(plain.state_dict(), strict=False)
    assert missing == ["bert.embeddings.entity_type_embeddings.weight"] and not unexpected
    table = aware.bert.embeddings.entity_type_embeddings.weight
    assert torch.count_nonzero(table) == 0  # initialised to zero, through BERT's init too
    inputs = tokenizer(["이순신은 조선 중기의 무신이다.", "서울"], padding=True, return_tensors="pt")
    none, ones = torch.zeros_like(inputs["input_ids"]), torch.ones_like(inputs["input_ids"])
    with torch.no_grad():
        want = plain(**inputs).logits
        assert torch.equal(aware(**inputs, entity_ids=ones).logits, want)  # a zero table adds nothing
        table[1].normal_()  # trained: the "entity" row moves, the "not entity" row has no reason to
        assert torch.equal(aware(**inputs, entity_ids=none).logits, want)  # all ids 0
        assert not torch.allclose(aware(**inputs, entity_ids=ones).logits, want)
    assert aware.bert.num_parameters() == aware.config.parameter_count() == plain.config.parameter_count() + 2 * 32


def test_add_entity_embedding_to_a_loaded_model_keeps_its_outputs(tokenizer):
    torch.manual_seed(0)
    model = BertForQuestionAnswering(_tiny_config(tokenizer.vocab_size)).eval()
    inputs = tokenizer("이순신은 누구인가?", "이순신은 조선 중기의 무신이다.", return_tensors="pt")
    with torch.no_grad():
        want = model(**inputs).start_logits
    marked = entity_tokenizer(tokenizer, EntityConfig(entities="kiwi"))
    prepare_entity_model(model, marked.vocab_size, EntityConfig(entities="kiwi"))
    assert model.config.entity_type_vocab_size == 2 and model.config.vocab_size == marked.vocab_size
    assert model.bert.embeddings.word_embeddings.weight.shape[0] == marked.vocab_size
    with torch.no_grad():
        got = model(**inputs, entity_ids=torch.ones_like(inputs["input_ids"])).start_logits
    assert torch.equal(got, want)


def test_entity_aware_checkpoint_round_trip_and_missing_ids_error(tmp_path, tokenizer):
    torch.manual_seed(1)
    model = BertForQuestionAnswering(_tiny_config(tokenizer.vocab_size, entity_type_vocab_size=2)).eval()
    with torch.no_grad():
        model.bert.embeddings.entity_type_embeddings.weight.normal_()
    model.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["entity_type_vocab_size"] == 2
    back = BertForQuestionAnswering.from_pretrained(tmp_path)
    inputs = tokenizer("누구?", "이순신은 조선 중기의 무신이다.", return_tensors="pt")
    entity_ids = torch.zeros_like(inputs["input_ids"])
    entity_ids[0, 3:6] = 1
    with torch.no_grad():
        assert torch.equal(back(**inputs, entity_ids=entity_ids).start_logits,
                           model(**inputs, entity_ids=entity_ids).start_logits)
    with pytest.raises(InputError, match=r"entity-aware .* pass entity_ids="):
        back(**inputs)
    plain = BertForQuestionAnswering(_tiny_config(tokenizer.vocab_size)).eval()
    with pytest.raises(InputError, match="no entity embedding"):
        plain(**inputs, entity_ids=entity_ids)
    # A plain checkpoint's config.json is unchanged; an entity-aware model loads it with a zero table.
    plain.save_pretrained(tmp_path / "plain")
    assert "entity_type_vocab_size" not in json.loads((tmp_path / "plain" / "config.json").read_text())
    aware = BertForQuestionAnswering.from_pretrained(tmp_path / "plain", entity_type_vocab_size=2)
    assert torch.count_nonzero(aware.bert.embeddings.entity_type_embeddings.weight) == 0


def test_other_families_get_markers_only():
    config = EncoderFamilyConfig(family="roberta", vocab_size=50, hidden_size=32, num_hidden_layers=1,
                                 num_attention_heads=4, intermediate_size=64, max_position_embeddings=40,
                                 type_vocab_size=1, pad_token_id=1)
    model = task_class("question-answering", "roberta")(config)
    with pytest.raises(ConfigError, match="--no-entity-embedding"):
        add_entity_embedding(model)


def test_entity_config_refuses_what_cannot_work():
    with pytest.raises(ConfigError, match="no entity information"):
        EntityConfig(entities="kiwi", entity_markers=False, entity_embedding=False).validate()
    with pytest.raises(ConfigError, match="not a Kiwi tag"):
        EntityConfig(entities="kiwi", entity_tags=["NPP"]).validate()
    EntityConfig().validate()


# --- Kiwi and the command line ----------------------------------------------------------------

def test_kiwi_finds_a_known_proper_noun():
    pytest.importorskip("kiwipiepy")
    from hanformer.entities.kiwi import KiwiEntityDetector

    text = "어제 버락 오바마는 서울에서 연설했다."
    spans = KiwiEntityDetector(["NNP"]).detect([text, ""])
    assert [text[s.start:s.end] for s in spans[0]] == ["버락 오바마", "서울"]
    assert spans[1] == []


def test_finetune_korquad_with_kiwi_entities_and_predict(tmp_path_factory, tmp_path, tokenizer, capsys):
    pytest.importorskip("kiwipiepy")
    model_dir = make_checkpoint(tmp_path_factory.mktemp("entity-bert"), tokenizer, "BertForMaskedLM")
    context = "김철수는 서울에 간다. 박영희는 부산에 간다."
    qas = [{"id": f"q{i}", "question": f"{who}는 어디에 가?",
            "answers": [{"text": where, "answer_start": context.index(where)}]}
           for i, (who, where) in enumerate(zip(["김철수", "박영희"] * 4, ["서울", "부산"] * 4, strict=True))]
    qas += [{"id": f"v{i}", "question": f"{who}는 서울에 뭐 해?",  # an answer that is no proper noun
             "answers": [{"text": "간다", "answer_start": context.index("간다")}]}
            for i, who in enumerate(["김철수", "박영희"])]
    squad = tmp_path / "qa.json"
    squad.write_text(json.dumps({"data": [{"title": "t", "paragraphs": [{"context": context, "qas": qas}]}]},
                                ensure_ascii=False), encoding="utf-8")
    out = tmp_path / "qa"
    rc = main(["finetune", "--task", "korquad", "--model", str(model_dir), "--train", str(squad), "--valid",
               str(squad), "--out", str(out), "--epochs", "1", "--batch-size", "8", "--max-length", "64",
               "--doc-stride", "16", "--entities", "kiwi", *COMMON])
    err = capsys.readouterr().err
    assert rc == 0, err
    assert "entities: kiwi" in err
    best = out / "best"
    config = json.loads((best / "config.json").read_text())
    assert config["entity_type_vocab_size"] == 2 and config["vocab_size"] == tokenizer.vocab_size + 2
    assert json.loads((best / "task.json").read_text())["entities"]["entities"] == "kiwi"
    inputs = tmp_path / "q.tsv"
    inputs.write_text(f"김철수는 어디에 가?\t{context}\n", encoding="utf-8")
    assert main(["predict", "--model", str(best), "--input", str(inputs)]) == 0
    record = json.loads(capsys.readouterr().out)
    assert context[record["start"]:record["end"]] == record["answer"]
    # `hanformer serve` finds the entities the same way, unasked: the same answer as `predict`.
    served = InferenceEngine(best, ServeConfig()).predict(["김철수는 어디에 가?"], [context])[0]
    assert (served["answer"], served["start"], served["end"]) == (record["answer"], record["start"], record["end"])
    # Run without its entity inputs, the model says what it needs in one line.
    assert main(["predict", "--model", str(best), "--input", str(inputs), "--entities", "off"]) == 2
    assert "entity_ids" in capsys.readouterr().err
    # Split by answer type, the scores weigh back to what `evaluate` gives on all the questions.
    examples, _ = read_examples(get_task("korquad"), str(squad), DataConfig())
    by_type = scores_by_answer_type([best], "korquad", examples)
    assert by_type["questions"] == {"entity": 8, "other": 2}
    overall = evaluate(best, "korquad", str(squad))["metrics"]
    for metric in ("f1", "exact_match"):
        weighted = (8 * by_type["runs"][0][f"entity_answer_{metric}"] + 2 * by_type["runs"][0][f"other_answer_{metric}"]) / 10
        assert weighted == pytest.approx(overall[metric]), metric
