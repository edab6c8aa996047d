"""pad_rows / padding_mask_of: the one padding of id lists (batches, requests, prompts, sources)."""

import torch

from hanformer.data.padding import pad_rows, padding_mask_of


def test_right_padding_keeps_each_row_at_the_start():
    rows = [[5, 6, 7], [8], []]
    assert pad_rows(rows, 0).tolist() == [[5, 6, 7], [8, 0, 0], [0, 0, 0]]
    assert padding_mask_of(rows).tolist() == [[1, 1, 1], [1, 0, 0], [0, 0, 0]]


def test_left_padding_puts_each_row_at_the_end_as_prompts_need():
    rows = [[5, 6, 7], [8]]
    assert pad_rows(rows, 9, left=True).tolist() == [[5, 6, 7], [9, 9, 8]]
    assert padding_mask_of(rows, left=True).tolist() == [[1, 1, 1], [0, 0, 1]]


def test_a_given_width_and_device_and_the_long_dtype():
    out = pad_rows([[1, 2]], -100, width=4, device="cpu")
    assert out.tolist() == [[1, 2, -100, -100]] and out.dtype == torch.long and out.device.type == "cpu"
