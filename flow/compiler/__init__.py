"""The compiler: a torch.export graph lowered to float layers (lower), quantized into the
hardware graph (build_graph, hardware_graph) with its cycle model and FIFO depths (timing)."""
