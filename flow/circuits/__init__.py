"""The hardware library the ops build on: the RTL components' parameters and cycles (components),
literal packing, and the shift-add circuits of constant layers (cmvm adder graph,
adder_polarity, constant_linear, and the shift_add emitter)."""
