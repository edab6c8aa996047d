"""Label conventions shared by the data that makes labels and the models that score them."""

# A label position the loss skips (unmasked tokens in MLM, padding, the pieces of a word after its
# first in NER): the value `torch.nn.functional.cross_entropy` ignores by default, as in transformers.
IGNORE_INDEX = -100
