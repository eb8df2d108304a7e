"""Datasets and tokenizers: IMDb (hub or local copy), WordPiece / bert-base-uncased, padding loaders."""
