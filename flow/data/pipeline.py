"""IMDb end to end for the labs: load, split off validation, tokenize, and say which sources were used."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from transformers import PreTrainedTokenizerBase

from flow.data.imdb import load_imdb, train_val_split
from flow.data.loader import TokenizedDataset, tokenize
from flow.data.tokenizer import TokenizerSource, get_tokenizer


@dataclass
class IMDbData:
    """Tokenized train / validation / test splits plus the tokenizer and provenance."""

    train: TokenizedDataset
    val: TokenizedDataset
    test: TokenizedDataset
    tokenizer: PreTrainedTokenizerBase
    tokenizer_source: TokenizerSource
    data_source: str
    max_length: int

    def describe(self) -> dict[str, Any]:
        return {
            "data_source": self.data_source,
            "tokenizer": self.tokenizer_source.as_dict(),
            "max_length": self.max_length,
            "sizes": {"train": len(self.train), "val": len(self.val), "test": len(self.test)},
        }


def prepare_imdb(
    max_length: int = 256,
    tokenizer: Literal["auto", "bert-base-uncased", "wordpiece"] = "auto",
    val_fraction: float = 0.1,
    seed: int = 0,
    imdb_dir: str | None = None,
    train_limit: int | None = None,
    test_limit: int | None = None,
) -> IMDbData:
    """Load IMDb, hold out a seeded stratified validation split, tokenize all three splits.

    The WordPiece tokenizer (when used) is trained on the whole training split; limits take seeded
    random subsets (smoke presets) and are recorded in the sizes.
    """
    imdb = load_imdb(path=imdb_dir)
    tok, tok_src = get_tokenizer(tokenizer, train_texts=imdb.train.texts)
    train_split, val_split = train_val_split(imdb.train, val_fraction, seed)
    if train_limit is not None:
        train_split = train_split.subset(train_limit, seed)
        val_split = val_split.subset(max(1, round(train_limit * val_fraction)), seed)
    test_split = imdb.test.subset(test_limit, seed) if test_limit is not None else imdb.test
    return IMDbData(
        tokenize(train_split, tok, max_length),
        tokenize(val_split, tok, max_length),
        tokenize(test_split, tok, max_length),
        tok,
        tok_src,
        imdb.source,
        max_length,
    )
