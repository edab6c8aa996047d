"""The models: BERT config, Transformer building blocks, BERT and its task heads, checkpoints.

    config.py      BertConfig (Hugging Face field names) and presets tiny ... large
    layers.py      attention, feed-forward, Transformer block, KV cache, unpadded token layout
    embeddings.py  token + segment + position embeddings
    bert.py        BertModel (encoder + pooler) and the shared save/load base class
    heads.py       BertForPreTraining, BertForMaskedLM, BertForSequence/TokenClassification, BertForQuestionAnswering
    outputs.py     output dataclasses with transformers' field names
    checkpoint.py  Hugging Face layout: key mapping, load_model, inspect_checkpoint, convert_checkpoint
    embedding.py   embed(): sentence embeddings (mean pooling) and similarities
    gpt.py         GPTConfig (GPT-2 field names, presets tiny ... gpt2-small), GPTModel, GPTForCausalLM
    gpt_checkpoint.py  the GPT-2 checkpoint layout (Conv1D orientation, c_attn/c_proj names)
"""
