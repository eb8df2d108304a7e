"""A design: config, model training (cached), quantization, and the emit-rtl pipeline."""
