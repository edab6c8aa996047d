"""Task readers on the real files (row counts as published) and on crafted malformed files."""

from __future__ import annotations

import json

import pytest

from hanformer.errors import InputError
from hanformer.tasks.readers import read_conll, read_klue_ner, read_records, read_squad, read_table
from hanformer.tasks.registry import TASKS, Columns, compute_metrics, get_task
from hanformer.tasks.split import carve_validation

# ---- real files -----------------------------------------------------------------------------


def test_nsmc_reads_with_quoting_off_and_skips_empty_documents(shared_data):
    r = get_task("nsmc").read(shared_data / "nsmc" / "ratings_train.txt")
    # 150,000 rows, 5 with an empty document (reported with their line numbers)
    assert len(r.examples) + len(r.skipped) == 150_000
    assert len(r.skipped) == 5 and all("empty text" in b.reason for b in r.skipped)
    assert r.skipped[0].where.endswith("ratings_train.txt:25859")
    assert {e.label for e in r.examples} == {"0", "1"}
    # quotes are literal: the CSV-quoted form stays as written
    assert any(e.text.startswith('"') for e in r.examples)


@pytest.mark.parametrize("task,count", [("sst2", 67_349), ("korsts", 5_749), ("klue-nli", 2_000),
                                        ("klue-ner", 4_000), ("conll2003", 14_041), ("korquad", 4_207)])
def test_real_files_read_completely(shared_data, task, count):
    spec = get_task(task)
    r = spec.read(shared_data / spec.data)
    assert len(r.examples) == count and not r.skipped


def test_real_examples_look_right(shared_data):
    sts = get_task("korsts").read(shared_data / "korsts" / "sts-train.tsv").examples[0]
    assert (sts.text, sts.text_pair, sts.label) == ("비행기가 이륙하고 있다.", "비행기가 이륙하고 있다.", 5.0)
    ner = get_task("klue-ner").read(shared_data / TASKS["klue-ner"].data).examples[0]
    assert ner.text.startswith("B 씨는 사법시험") and ner.tags[:3] == ["B-PS", "O", "O"]
    assert len(ner.spans) == len(ner.text)  # one unit per character, spaces included
    conll = get_task("conll2003").read(shared_data / "conll2003" / "valid.txt").examples
    assert sum(len(e.spans) for e in conll) == 51_362  # tokens, as published
    qa = get_task("korquad").read(shared_data / TASKS["korquad"].data).examples[0]
    assert qa.context[qa.answers[0].start:qa.answers[0].end] == qa.answers[0].text


# ---- malformed input ------------------------------------------------------------------------


def test_table_reports_bad_rows_with_file_and_line(tmp_path):
    f = tmp_path / "nsmc.txt"
    f.write_text("id\tdocument\tlabel\n1\tgood\t1\n2\tno label column\n3\t\t0\n4\tbad label\t7\n5\tfine\t0\n",
                 encoding="utf-8")
    r = read_table(f, text="document", labels=["0", "1"])
    assert [e.text for e in r.examples] == ["good", "fine"]
    assert [b.where.rsplit(":", 1)[1] for b in r.skipped] == ["3", "4", "5"]
    assert "2 columns, expected 3" in r.skipped[0].reason
    assert "empty text" in r.skipped[1].reason
    assert "unknown label '7'" in r.skipped[2].reason
    assert "skipped 3 malformed rows" in r.summary()
    with pytest.raises(InputError, match=r"nsmc.txt:3: 2 columns.*--on-error skip"):
        read_table(f, text="document", labels=["0", "1"], on_error="fail")


def test_table_missing_column_and_non_utf8(tmp_path):
    f = tmp_path / "x.tsv"
    f.write_text("sentence\tlabel\nhello\t1\n", encoding="utf-8")
    with pytest.raises(InputError, match="no column 'document'"):
        read_table(f, text="document")
    g = tmp_path / "cp949.tsv"
    g.write_bytes(b"sentence\tlabel\n" + "영화\t1\n".encode("cp949"))
    with pytest.raises(InputError, match=r"cp949.tsv:2: not valid UTF-8"):
        read_table(g, text="sentence")


def test_generic_csv_and_jsonl_with_named_columns(tmp_path):
    csv_file = tmp_path / "reviews.csv"
    csv_file.write_text('review,stars\n"great, really",pos\n"said ""meh""",neg\n', encoding="utf-8")
    r = TASKS["classification"].read(csv_file, columns=Columns(text="review", label="stars"))
    assert [(e.text, e.label) for e in r.examples] == [("great, really", "pos"), ('said "meh"', "neg")]
    jl = tmp_path / "pairs.jsonl"
    jl.write_text(json.dumps({"a": "x", "b": "y", "label": "same"}) + "\n{broken\n"
                  + json.dumps({"a": "p", "b": "q", "label": "diff"}) + "\n", encoding="utf-8")
    r = TASKS["pair-classification"].read(jl, columns=Columns(text="a", pair="b"))
    assert [(e.text, e.text_pair) for e in r.examples] == [("x", "y"), ("p", "q")]
    assert r.skipped[0].where.endswith("pairs.jsonl:2") and "invalid JSON" in r.skipped[0].reason
    reg = tmp_path / "scores.tsv"
    reg.write_text("text\tlabel\na\t1.5\nb\tlots\n", encoding="utf-8")
    r = TASKS["regression"].read(reg)
    assert r.examples[0].label == 1.5 and "not a number" in r.skipped[0].reason


def test_klue_nli_json_unknown_label(tmp_path):
    f = tmp_path / "nli.json"
    f.write_text(json.dumps([{"premise": "a", "hypothesis": "b", "gold_label": "neutral"},
                             {"premise": "a", "hypothesis": "c", "gold_label": "maybe"}]), encoding="utf-8")
    r = get_task("klue-nli").read(f)
    assert len(r.examples) == 1 and "item 1" in r.skipped[0].where and "'maybe'" in r.skipped[0].reason


def test_ner_readers_malformed_sentences(tmp_path):
    klue = tmp_path / "ner.tsv"
    klue.write_text("## header\n## id1\t<가 나:PS>\n가\tB-PS\n \tO\n나\tI-PS\n\n## id2\n다\tB-XX\n\n라\n\n", encoding="utf-8")
    r = read_klue_ner(klue, labels=["O", "B-PS", "I-PS"])
    assert [e.text for e in r.examples] == ["가 나"]
    assert "unknown tag 'B-XX'" in r.skipped[0].reason and r.skipped[0].where.endswith("ner.tsv:8")
    assert "CHAR<TAB>TAG" in r.skipped[1].reason
    conll = tmp_path / "conll.txt"
    conll.write_text("-DOCSTART- O\n\nEU B-ORG \nrejects O \n\nlonely\n\n", encoding="utf-8")
    r = read_conll(conll)
    assert r.examples[0].units == ["EU", "rejects"] and r.examples[0].text == "EU rejects"
    assert "expected 'TOKEN TAG'" in r.skipped[0].reason


def test_klue_ner_character_lines_must_spell_their_sentence_line(tmp_path):
    """A character line lost in an edit used to be read as a shorter sentence with shifted tags."""
    klue = tmp_path / "ner.tsv"
    good = "## id1\t<서울:LC>에 간다\n서\tB-LC\n울\tI-LC\n에\tO\n \tO\n간\tO\n다\tO\n\n"
    lost = "## id2\t<부산:LC>에 간다\n부\tB-LC\n에\tO\n \tO\n간\tO\n다\tO\n\n"
    klue.write_text(good + lost, encoding="utf-8")
    r = read_klue_ner(klue, labels=get_task("klue-ner").labels)
    assert [e.text for e in r.examples] == ["서울에 간다"]
    assert r.skipped[0].where == f"{klue}:10"  # the first character line of the broken sentence
    assert "the sentence on line 9 has 6" in r.skipped[0].reason and "5 characters" in r.skipped[0].reason
    assert "differ at character 2 ('에' vs '산')" in r.skipped[0].reason
    with pytest.raises(InputError, match=r"ner.tsv:10: the character lines spell 5 characters") as e:
        read_klue_ner(klue, on_error="fail")
    assert "\n" not in str(e.value)
    # Files without `##` sentence lines (people's own) are read as before.
    plain = tmp_path / "plain.tsv"
    plain.write_text("부\tB-LC\n산\tI-LC\n", encoding="utf-8")
    assert read_klue_ner(plain).examples[0].text == "부산"


def test_korsts_scores_outside_0_to_5_are_malformed(tmp_path):
    path = tmp_path / "sts.tsv"
    rows = ["genre\tfilename\tyear\tid\tscore\tsentence1\tsentence2",
            "g\tf\t2017\t1\t5.00\t가\t나", "g\tf\t2017\t2\t7.5\t가\t나",
            "g\tf\t2017\t3\t-1\t가\t나", "g\tf\t2017\t4\tinf\t가\t나", "g\tf\t2017\t5\t0\t가\t나"]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    r = get_task("korsts").read(path)
    assert [e.label for e in r.examples] == [5.0, 0.0]
    assert [(b.where, b.reason) for b in r.skipped] == [
        (f"{path}:3", "score '7.5' in field 'score' is outside 0-5"),
        (f"{path}:4", "score '-1' in field 'score' is outside 0-5"),
        (f"{path}:5", "score 'inf' in field 'score' is not a number")]
    # The generic regression task has no fixed range, but inf is still not a score.
    generic = get_task("regression").read(path, columns=Columns(text="sentence1", label="score"))
    assert [e.label for e in generic.examples] == [5.0, 7.5, -1.0, 0.0]


def test_squad_answer_mismatch_is_reported(tmp_path):
    data = {"data": [{"title": "t", "paragraphs": [{"context": "Seoul is the capital of Korea.", "qas": [
        {"id": "ok", "question": "What is the capital?", "answers": [{"text": "Seoul", "answer_start": 0}]},
        {"id": "off", "question": "Capital of?", "answers": [{"text": "Korea", "answer_start": 3}]},
        {"id": "none", "question": "Why?", "answers": []},
    ]}]}]}
    f = tmp_path / "squad.json"
    f.write_text(json.dumps(data), encoding="utf-8")
    r = read_squad(f)
    assert [e.id for e in r.examples] == ["ok"]
    assert "question off" in r.skipped[0].where and "does not match the context" in r.skipped[0].reason
    assert "no answers" in r.skipped[1].reason
    assert len(read_squad(f, require_answers=False).examples) == 2
    with pytest.raises(InputError, match="question off"):
        read_squad(f, on_error="fail")


def test_records_json_list_missing_field(tmp_path):
    f = tmp_path / "x.json"
    f.write_text(json.dumps([{"text": "a", "label": "1"}, {"label": "0"}]), encoding="utf-8")
    r = read_records(f, text="text")
    assert len(r.examples) == 1 and "missing field 'text'" in r.skipped[0].reason


# ---- validation carve and registry ------------------------------------------------------------


def test_carve_is_deterministic_seeded_and_grouped():
    items = list(range(1000))
    a = carve_validation(items, 0.1, seed=7)
    assert a == carve_validation(items, 0.1, seed=7)
    assert a != carve_validation(items, 0.1, seed=8)
    train, valid = a
    assert len(valid) == 100 and sorted(train + valid) == items and not set(train) & set(valid)
    groups = [i // 10 for i in items]  # ten items per group
    train, valid = carve_validation(items, 0.2, seed=1, group=lambda i: groups[i])
    assert not {groups[i] for i in train} & {groups[i] for i in valid}
    assert len(valid) == 200


def test_registry_metrics_per_kind():
    assert compute_metrics(get_task("nsmc"), ["0", "1", "1"], ["0", "1", "0"])["accuracy"] == pytest.approx(2 / 3)
    assert compute_metrics(get_task("korsts"), [1.0, 2.0, 3.0], [1.1, 2.2, 2.9])["pearson"] > 0.99
    m = compute_metrics(get_task("klue-ner"), [["B-PS", "I-PS", "O"]], [["B-PS", "I-PS", "O"]],
                        labels=TASKS["klue-ner"].labels)
    assert m["entity_f1"] == 1.0 and m["char_f1"] == 1.0
    m = compute_metrics(get_task("korquad"), [["부참모 총장"]], ["부참모 총장이"])
    assert m["exact_match"] == 0.0 and m["f1"] > 90
