"""The encoder–decoder Transformer equals transformers' MarianMTModel, checkpoints moving both ways.

A small random MarianMTModel is saved by transformers and loaded by hanformer (and ours saved and
loaded back by transformers); the logits on a padded batch must agree to 1e-5. Variants cover the
options Marian can represent: scaled or unscaled embeddings, shared or separate embeddings, a
tied or untied output layer, GELU or ReLU, learned positions.
"""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from hanformer.errors import CheckpointError
from hanformer.models.checkpoint import inspect_checkpoint, load_model
from hanformer.models.encoder_decoder.config import TransformerConfig
from hanformer.models.encoder_decoder.model import TransformerForSeq2SeqLM, TransformerModel

transformers = pytest.importorskip("transformers")

VOCAB, PAD, EOS = 99, 98, 0


def marian(seed: int = 0, **overrides):
    settings = dict(vocab_size=VOCAB, d_model=32, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
                    decoder_attention_heads=4, encoder_ffn_dim=37, decoder_ffn_dim=37, max_position_embeddings=64,
                    pad_token_id=PAD, decoder_start_token_id=PAD, eos_token_id=EOS, forced_eos_token_id=None,
                    scale_embedding=True, activation_function="gelu", init_std=0.2)
    settings.update(overrides)
    torch.manual_seed(seed)
    model = transformers.MarianMTModel(transformers.MarianConfig(**settings)).eval()
    with torch.no_grad():  # a non-zero output bias, so that it is tested too
        model.final_logits_bias.normal_()
    return model


def batch(seed: int = 0, pad: int = PAD, target_vocab: int = VOCAB):
    g = torch.Generator().manual_seed(seed)
    source = torch.randint(1, VOCAB - 1, (3, 9), generator=g)
    source_mask = torch.ones_like(source)
    source_mask[1, 6:] = 0
    source_mask[2, 3:] = 0
    source = source.masked_fill(source_mask == 0, pad)
    labels = torch.randint(2, target_vocab - 1, (3, 7), generator=g)
    target_mask = torch.ones_like(labels)
    target_mask[0, 5:] = 0
    labels = labels.masked_fill(target_mask == 0, -100)
    decoder_input_ids = torch.cat([torch.full((3, 1), pad), labels[:, :-1].masked_fill(labels[:, :-1] < 0, pad)], 1)
    return source, source_mask, decoder_input_ids, target_mask, labels


def compare(hf, ours):
    config = hf.config
    source, source_mask, decoder_ids, target_mask, labels = batch(pad=config.pad_token_id,
                                                                  target_vocab=config.decoder_vocab_size)
    with torch.no_grad():
        want = hf(input_ids=source, attention_mask=source_mask, decoder_input_ids=decoder_ids,
                  decoder_attention_mask=target_mask).logits
        got = ours(source, source_mask, decoder_ids, target_mask).logits
    real = target_mask.bool()  # padded target positions are never read
    torch.testing.assert_close(got[real], want[real], atol=1e-5, rtol=1e-5)


VARIANTS = {
    "paper-like": {},
    "unscaled-relu": dict(scale_embedding=False, activation_function="relu"),
    "separate-embeddings": dict(share_encoder_decoder_embeddings=False, decoder_vocab_size=77, pad_token_id=0,
                                decoder_start_token_id=0, eos_token_id=1),
    "untied-output": dict(share_encoder_decoder_embeddings=False, tie_word_embeddings=False),
}


@pytest.mark.parametrize("variant", VARIANTS)
def test_marian_checkpoint_loads_with_equal_logits_and_saves_back(variant, tmp_path):
    hf = marian(**VARIANTS[variant])
    hf.save_pretrained(tmp_path / "hf")
    ours = load_model(tmp_path / "hf")
    assert isinstance(ours, TransformerForSeq2SeqLM)
    compare(hf, ours)
    ours.save_pretrained(tmp_path / "ours")
    back = transformers.MarianMTModel.from_pretrained(tmp_path / "ours").eval()
    compare(back, ours)


def test_our_model_saves_to_marian_and_loss_equals_theirs_without_smoothing(tmp_path):
    torch.manual_seed(1)
    config = TransformerConfig.preset("tiny", vocab_size=VOCAB, d_model=32, encoder_attention_heads=4,
                                      decoder_attention_heads=4, encoder_ffn_dim=48, decoder_ffn_dim=48,
                                      max_position_embeddings=64, pad_token_id=PAD, eos_token_id=EOS,
                                      label_smoothing=0.0)
    ours = TransformerForSeq2SeqLM(config).eval()
    ours.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["architectures"] == ["MarianMTModel"] and saved["decoder_start_token_id"] == PAD
    hf = transformers.MarianMTModel.from_pretrained(tmp_path).eval()
    compare(hf, ours)
    source, source_mask, _, _, labels = batch()
    with torch.no_grad():
        want = hf(input_ids=source, attention_mask=source_mask, labels=labels).loss
        got = ours(source, source_mask, labels=labels).loss
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_label_smoothing_loss_ignores_padding():
    torch.manual_seed(2)
    config = TransformerConfig.preset("tiny", vocab_size=VOCAB, pad_token_id=PAD, eos_token_id=EOS, dropout=0.0)
    model = TransformerForSeq2SeqLM(config).eval()
    source, source_mask, _, _, labels = batch()
    real = labels >= 0
    decoder_ids = torch.cat([torch.full((3, 1), PAD), labels[:, :-1].masked_fill(~real[:, :-1], PAD)], 1)
    with torch.no_grad():
        out = model(source, source_mask, labels=labels)  # the decoder skips the padded targets
        dense = model(source, source_mask, decoder_ids).logits  # every target position, no labels
        expected = F.cross_entropy(dense[real], labels[real], label_smoothing=0.1)
        padded_with_pad = model(source, source_mask, labels=labels.masked_fill(~real, PAD)).loss
    torch.testing.assert_close(out.logits, dense[real], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out.loss, expected)
    torch.testing.assert_close(padded_with_pad, expected)


def test_training_on_packed_targets_has_the_dense_gradients():
    """With labels the decoder runs on the real target tokens only; the gradients must be those
    of the plain padded computation (dropout off)."""
    torch.manual_seed(4)
    config = TransformerConfig.preset("tiny", vocab_size=VOCAB, pad_token_id=PAD, eos_token_id=EOS, dropout=0.0,
                                      attention_dropout=0.0, label_smoothing=0.1)
    model = TransformerForSeq2SeqLM(config).train()
    source, source_mask, decoder_ids, _, labels = batch()
    real = labels >= 0
    model(source, source_mask, labels=labels).loss.backward()
    packed = {name: p.grad.clone() for name, p in model.named_parameters()}
    model.zero_grad()
    logits = model(source, source_mask, decoder_ids).logits
    F.cross_entropy(logits[real], labels[real], label_smoothing=0.1).backward()
    for name, p in model.named_parameters():
        torch.testing.assert_close(packed[name], p.grad, atol=1e-5, rtol=1e-4, msg=name)


def test_learned_positions_and_bare_model_load_in_transformers(tmp_path):
    torch.manual_seed(3)
    config = TransformerConfig.preset("tiny", vocab_size=VOCAB, d_model=32, encoder_attention_heads=4,
                                      decoder_attention_heads=4, max_position_embeddings=64, pad_token_id=PAD,
                                      eos_token_id=EOS, position_embedding_type="learned")
    ours = TransformerForSeq2SeqLM(config).eval()
    ours.save_pretrained(tmp_path / "lm")
    compare(transformers.MarianMTModel.from_pretrained(tmp_path / "lm").eval(), ours)
    bare = TransformerModel.from_pretrained(tmp_path / "lm")  # the LM checkpoint's encoder-decoder
    source, source_mask, decoder_ids, target_mask, _ = batch()
    with torch.no_grad():
        want = transformers.MarianModel.from_pretrained(tmp_path / "lm").eval()(
            input_ids=source, attention_mask=source_mask, decoder_input_ids=decoder_ids).last_hidden_state
        got = bare(source, source_mask, decoder_ids).last_hidden_state
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_pre_ln_round_trips_in_hanformer(tmp_path):
    torch.manual_seed(4)
    config = TransformerConfig.preset("tiny", vocab_size=VOCAB, pad_token_id=PAD, eos_token_id=EOS,
                                      norm_placement="pre", tie_word_embeddings=False)
    ours = TransformerForSeq2SeqLM(config).eval()
    ours.save_pretrained(tmp_path)
    again = load_model(tmp_path)
    source, source_mask, decoder_ids, target_mask, _ = batch()
    with torch.no_grad():
        torch.testing.assert_close(again(source, source_mask, decoder_ids).logits,
                                   ours(source, source_mask, decoder_ids).logits)
    info = inspect_checkpoint(tmp_path)
    assert info["norm_placement"] == "pre" and info["parameters"] == config.parameter_count()


def test_wrong_checkpoints_are_one_line_errors(tmp_path):
    marian().save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, "decoder_layers": 3}))
    with pytest.raises(Exception, match="decoder_layers = 3 but the weights hold 2 layers"):
        load_model(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({**config, "decoder_ffn_dim": 40}))
    with pytest.raises(CheckpointError, match="fc1.weight has shape"):
        load_model(tmp_path)
