"""One module per lab task (`python -m flow.labs.<lab> --preset smoke|full`); each writes results JSON and figures."""
