"""WordPiece tokenizer: training, BERT conventions, caching, and the offline fallback."""

import random

import pytest

from flow.data.tokenizer import cached_wordpiece, get_tokenizer, train_wordpiece

WORDS = ["the", "movie", "film", "was", "great", "terrible", "acting", "plot", "boring", "wonderful", "actor", "scene", "story", "characters", "loved", "hated", "watch", "watching", "watched", "director", "music", "ending", "beautiful", "awful", "funny"]


def corpus(n=300, seed=0):
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 30))).capitalize() + ".<br /><br />Nice!"
            for _ in range(n)]


def test_wordpiece_follows_bert_conventions():
    tok = train_wordpiece(corpus(), vocab_size=200)
    assert tok.convert_ids_to_tokens(list(range(5))) == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    assert tok.pad_token_id == 0
    enc = tok("The MOVIE was Great.<br />Wonderful!")
    tokens = tok.convert_ids_to_tokens(enc["input_ids"])
    assert tokens[0] == "[CLS]" and tokens[-1] == "[SEP]"
    assert "movie" in tokens and "great" in tokens  # lower-cased
    assert "<" not in tokens and "br" not in tokens  # <br /> tags removed
    assert len(tok(" ".join(["film"] * 100), truncation=True, max_length=16)["input_ids"]) == 16


def test_cache_hit_on_second_call(tmp_path):
    texts = corpus()
    tok1, path1, hit1 = cached_wordpiece(texts, vocab_size=200, cache=tmp_path)
    tok2, path2, hit2 = cached_wordpiece(texts, vocab_size=200, cache=tmp_path)
    assert (hit1, hit2) == (False, True) and path1 == path2 and path1.is_file()
    assert tok1("great acting")["input_ids"] == tok2("great acting")["input_ids"]
    _, path3, hit3 = cached_wordpiece(corpus(seed=1), vocab_size=200, cache=tmp_path)
    assert path3 != path1 and not hit3  # another corpus: another cache entry
    assert not list(tmp_path.glob("*.tmp"))


def test_auto_falls_back_to_wordpiece_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("FLOW_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # empty HF cache: bert-base-uncased is not there
    tok, src = get_tokenizer("auto", train_texts=corpus(), vocab_size=200, cache=tmp_path)
    assert src.kind == "wordpiece" and "FLOW_OFFLINE is set" in src.detail and src.vocab_size == len(tok)


def test_bad_tokenizer_requests():
    with pytest.raises(ValueError, match="unknown tokenizer"):
        get_tokenizer("gpt2")
    with pytest.raises(ValueError, match="needs training texts"):
        get_tokenizer("wordpiece", train_texts=None)
