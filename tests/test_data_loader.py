"""Dynamic padding, truncation and length-sorted evaluation batches."""

import pytest
import torch

from flow.data.imdb import TextSplit
from flow.data.loader import PadCollate, TokenizedDataset, make_loader, tokenize
from flow.data.tokenizer import train_wordpiece
from tests.test_data_tokenizer import corpus


def test_collate_pads_to_longest_in_batch():
    batch = PadCollate(pad_id=0)([(torch.tensor([2, 7, 3]), 1), (torch.tensor([2, 9, 9, 9, 3]), 0)])
    assert batch["input_ids"].tolist() == [[2, 7, 3, 0, 0], [2, 9, 9, 9, 3]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]]
    assert batch["labels"].tolist() == [1, 0]


def test_tokenize_truncates_to_max_length():
    tok = train_wordpiece(corpus(), vocab_size=200)
    split = TextSplit(corpus(20, seed=4), [i % 2 for i in range(20)])
    ds = tokenize(split, tok, max_length=12)
    assert max(ds.lengths()) == 12 and min(ds.lengths()) >= 3
    with pytest.raises(ValueError, match="max_length 600"):
        tokenize(split, tok, max_length=600)


def test_loaders_shuffle_seeded_and_sort_by_length():
    ds = TokenizedDataset([[2] + [5] * n + [3] for n in range(1, 21)], [n % 2 for n in range(20)])
    order = lambda loader: [int(x) for b in loader for x in b["attention_mask"].sum(1)]
    a = order(make_loader(ds, 4, shuffle=True, seed=1))
    assert a == order(make_loader(ds, 4, shuffle=True, seed=1)) and sorted(a) != a
    widths = [b["input_ids"].shape[1] for b in make_loader(ds, 4, sort_by_length=True)]
    assert widths == [6, 10, 14, 18, 22]  # each batch padded only to its own longest
    with pytest.raises(ValueError, match="not both"):
        make_loader(ds, 4, shuffle=True, sort_by_length=True)
    with pytest.raises(ValueError, match="labels"):
        TokenizedDataset([[1, 2]], [0, 1])
