"""Number formats: the single numeric truth shared by training, the exact reference and the RTL."""
