"""The models: BERT config, Transformer building blocks, BERT and its task heads, checkpoints.

    config.py      BertConfig (Hugging Face field names) and presets tiny ... large
    layers.py      attention, feed-forward, Transformer block, KV cache, unpadded token layout
    embeddings.py  token + segment + position embeddings
    bert.py        BertModel (encoder + pooler) and the shared save/load base class
    heads.py       BertForPreTraining, BertForMaskedLM, BertForSequence/TokenClassification, BertForQuestionAnswering
    outputs.py     output dataclasses with transformers' field names
    hub.py         checkpoint files of any family: safetensors/shards/.bin, config.json, checks, atomic save
    registry.py    the one table: architecture name -> class, checkpoint adapter, model_type, task
    checkpoint.py  load_model, inspect_checkpoint, convert_checkpoint, and from/save_pretrained's entry points
    bert_checkpoint.py    BERT's tensor names <-> transformers' (Q/K/V split/fused)
    embedding.py   embed(): sentence embeddings (mean pooling) and similarities
    gpt.py         GPTConfig (GPT-2 field names, presets tiny ... gpt2-small), GPTModel, GPTForCausalLM
    gpt_checkpoint.py     the GPT-2 checkpoint layout (Conv1D orientation, c_attn/c_proj names)
    encoder_family.py     RoBERTa, XLM-R, ELECTRA: one config with the families' options, their classes
    family_checkpoint.py  their checkpoint layout (BERT's encoder under the family's prefix, head names)
"""
