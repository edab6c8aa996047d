"""BERT and its relatives: config (`config`), input embeddings (`embeddings`), the encoder
(`model`), task heads (`heads`), ELECTRA's generator + discriminator (`electra`), RoBERTa /
XLM-R / ELECTRA classes (`family`), and the Hugging Face checkpoint layouts (`checkpoint`,
`family_checkpoint`)."""
