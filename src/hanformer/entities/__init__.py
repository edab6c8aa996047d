"""Entity-aware inputs for BERT: entities found in Korean text, given to the model as
`[ENT]`/`[/ENT]` markers and/or an entity embedding (is this token part of an entity or not).

* `config`    - `EntityConfig`: the source (off, kiwi, a NER model), tags, markers, embedding
* `spans`     - `EntitySpan`: an entity as a character span of the original text
* `kiwi`      - proper nouns (NNP, or other tags) from the Kiwi analyser; fast, no model
* `ner_model` - entities from a fine-tuned token-classification model (e.g. KLUE-NER), batched
* `detect`    - the detector a config asks for
* `marking`   - markers and entity ids on the pieces of a text, offsets kept
* `tokens`    - the tokenizer of an entity-aware model (markers added, settings recorded)
* `inputs`    - `EntityInputs`: detection + marking, as `tasks.encoding.PieceEncoder` applies it
* `model`     - marker rows and the (zero) entity table on a loaded model

The submodules are imported by name (this package imports nothing itself: `config` stays light
for the command line's --help, the rest brings in torch).

    from hanformer.entities.kiwi import KiwiEntityDetector
    KiwiEntityDetector(["NNP"]).detect(["이순신은 조선 중기의 무신이다."])
    # [[EntitySpan(start=0, end=3, label='NNP'), EntitySpan(start=5, end=7, label='NNP')]]
"""
