"""Tokenizer: `bert-base-uncased` when the hub or cache has it, otherwise an uncased WordPiece
vocabulary trained on the IMDb training split with Hugging Face `tokenizers` and cached.

Both come back as a `PreTrainedTokenizerFast`, so callers use one API; `TokenizerSource` says which.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from tokenizers import Tokenizer, normalizers, pre_tokenizers, processors
from tokenizers.models import WordPiece
from tokenizers.trainers import WordPieceTrainer
from transformers import AutoTokenizer, PreTrainedTokenizerFast
from transformers.utils import logging as hf_logging

from flow.hub import hub_status
from flow.paths import cache_dir

PRETRAINED_TOKENIZER = "bert-base-uncased"
SPECIALS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


@dataclass(frozen=True)
class TokenizerSource:
    """Which tokenizer was used: `bert-base-uncased` or a `wordpiece` trained here (with its cache file)."""

    kind: Literal["bert-base-uncased", "wordpiece"]
    detail: str
    vocab_size: int

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def train_wordpiece(texts: Sequence[str], vocab_size: int = 30522, min_frequency: int = 2) -> PreTrainedTokenizerFast:
    """Train an uncased BERT-style WordPiece tokenizer ([CLS] text [SEP]); `<br />` tags become spaces."""
    tok = Tokenizer(WordPiece(unk_token="[UNK]", max_input_chars_per_word=100))
    tok.normalizer = normalizers.Sequence(
        [normalizers.Replace("<br />", " "), normalizers.BertNormalizer(lowercase=True, strip_accents=True)]
    )
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = WordPieceTrainer(
        vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=list(SPECIALS), show_progress=False
    )
    tok.train_from_iterator(texts, trainer=trainer, length=len(texts))
    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)]
    )
    from tokenizers import decoders

    tok.decoder = decoders.WordPiece()
    return _wrap(tok)


def _wrap(tok: Tokenizer) -> PreTrainedTokenizerFast:
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=512,
    )


def _corpus_key(texts: Sequence[str], vocab_size: int, min_frequency: int) -> str:
    h = hashlib.sha256(f"v2|{vocab_size}|{min_frequency}|{len(texts)}".encode())
    for text in texts:
        h.update(text.encode("utf-8"))
        h.update(b"\0")
    return h.hexdigest()[:16]


def cached_wordpiece(
    texts: Sequence[str], vocab_size: int = 30522, min_frequency: int = 2, cache: str | Path | None = None
) -> tuple[PreTrainedTokenizerFast, Path, bool]:
    """A WordPiece tokenizer for this corpus, trained once and cached by corpus hash; returns (tok, file, hit)."""
    folder = Path(cache) if cache is not None else cache_dir() / "tokenizers"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"wordpiece-{vocab_size}-{_corpus_key(texts, vocab_size, min_frequency)}.json"
    if path.is_file():
        return _wrap(Tokenizer.from_file(str(path))), path, True
    tok = train_wordpiece(texts, vocab_size, min_frequency)
    tmp = path.with_suffix(".tmp")
    tok.backend_tokenizer.save(str(tmp))
    tmp.replace(path)  # atomic: never leave a half-written cache entry
    return tok, path, False


def get_tokenizer(
    kind: Literal["auto", "bert-base-uncased", "wordpiece"] = "auto",
    train_texts: Sequence[str] | None = None,
    vocab_size: int = 30522,
    cache: str | Path | None = None,
) -> tuple[PreTrainedTokenizerFast, TokenizerSource]:
    """`auto`: bert-base-uncased from hub/cache, else WordPiece trained on `train_texts` (cached)."""
    if kind not in ("auto", "bert-base-uncased", "wordpiece"):
        raise ValueError(f"unknown tokenizer {kind!r}; use auto, bert-base-uncased or wordpiece")
    reason = "wordpiece requested"
    if kind != "wordpiece":
        reachable, why = hub_status()
        verbosity = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()
        try:
            tok = AutoTokenizer.from_pretrained(PRETRAINED_TOKENIZER, local_files_only=not reachable)
            where = "hub" if reachable else "local Hugging Face cache"
            return tok, TokenizerSource("bert-base-uncased", f"{PRETRAINED_TOKENIZER} from the {where}", len(tok))
        except (OSError, ValueError) as exc:
            if kind == "bert-base-uncased":
                raise RuntimeError(
                    f"cannot load {PRETRAINED_TOKENIZER} ({why}); make the hub reachable or use the wordpiece tokenizer"
                ) from exc
            reason = f"{PRETRAINED_TOKENIZER} unavailable ({why})"
        finally:
            hf_logging.set_verbosity(verbosity)
    if not train_texts:
        raise ValueError("a WordPiece tokenizer needs training texts; pass the IMDb training split as train_texts")
    tok, path, hit = cached_wordpiece(train_texts, vocab_size, cache=cache)
    detail = f"WordPiece (uncased, {len(tok)} tokens) trained on {len(train_texts)} IMDb training reviews; " \
             f"{'cache hit' if hit else 'trained and cached'} {path.name}; {reason}"
    return tok, TokenizerSource("wordpiece", detail, len(tok))
