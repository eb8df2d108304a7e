`default_nettype none
// fixed_cast_lane: combinational cast of one fixed-point element to another format.
// Drops SHIFT = IN_FRAC - OUT_FRAC fractional bits with ROUNDING (or appends -SHIFT zero
// bits), then fits the result into OUT_WIDTH bits with OVERFLOW. Same function as
// flow.formats.fixed.cast_codes. ROUNDING: 0 floor, 1 half_up, 2 half_even.
// OVERFLOW: 0 saturate, 1 wrap.
module fixed_cast_lane #(
    parameter int IN_WIDTH   = 8,
    parameter int IN_FRAC    = 4,
    parameter bit IN_SIGNED  = 1'b1,
    parameter int OUT_WIDTH  = 8,
    parameter int OUT_FRAC   = 4,
    parameter bit OUT_SIGNED = 1'b1,
    parameter int ROUNDING   = 1,
    parameter int OVERFLOW   = 0
) (
    input  wire logic [IN_WIDTH-1:0]  data_in,
    output logic [OUT_WIDTH-1:0] data_out
);
    localparam int SHIFT  = IN_FRAC - OUT_FRAC;
    localparam int RSHIFT = SHIFT > 0 ? SHIFT : 0;
    localparam int LSHIFT = SHIFT < 0 ? -SHIFT : 0;
    // Working width: sign bit and left-shift room for the input, the rounding bits of a
    // right shift, and the output range with a sign bit, so nothing below overflows.
    localparam int EXT_A  = IN_WIDTH + 1 + LSHIFT;
    localparam int EXT_B  = RSHIFT + 2;
    localparam int EXT_C  = OUT_WIDTH + 2;
    localparam int EXT_AB = EXT_A > EXT_B ? EXT_A : EXT_B;
    localparam int EXT_W  = EXT_AB > EXT_C ? EXT_AB : EXT_C;

    localparam logic signed [EXT_W-1:0] ONE = EXT_W'(1);
    localparam logic signed [EXT_W-1:0] MAX_CODE =
        OUT_SIGNED ? (ONE <<< (OUT_WIDTH - 1)) - ONE : (ONE <<< OUT_WIDTH) - ONE;
    localparam logic signed [EXT_W-1:0] MIN_CODE =
        OUT_SIGNED ? -(ONE <<< (OUT_WIDTH - 1)) : '0;

    generate
        if (ROUNDING < 0 || ROUNDING > 2) begin : g_bad_rounding
            $error("fixed_cast_lane: ROUNDING must be 0 (floor), 1 (half_up) or 2 (half_even)");
        end
        if (OVERFLOW < 0 || OVERFLOW > 1) begin : g_bad_overflow
            $error("fixed_cast_lane: OVERFLOW must be 0 (saturate) or 1 (wrap)");
        end
    endgenerate

    /* verilator lint_off UNUSEDSIGNAL */  // low bits are unused when rounding by floor
    logic signed [EXT_W-1:0] extended;
    /* verilator lint_on UNUSEDSIGNAL */
    logic signed [EXT_W-1:0] scaled;   // floor(value * 2**OUT_FRAC)
    logic                    round_up;
    logic signed [EXT_W-1:0] rounded;

    always_comb begin
        extended = {{(EXT_W - IN_WIDTH){IN_SIGNED & data_in[IN_WIDTH-1]}}, data_in};
    end

    generate
        if (RSHIFT == 0) begin : g_no_round
            always_comb begin
                scaled   = extended <<< LSHIFT;
                round_up = 1'b0;
            end
        end else begin : g_round
            logic guard;   // the bit worth half an output LSB
            logic sticky;  // any bit below the guard
            always_comb begin
                scaled = extended >>> RSHIFT;
                guard  = extended[RSHIFT-1];
            end
            if (RSHIFT == 1) begin : g_no_sticky
                always_comb sticky = 1'b0;
            end else begin : g_sticky
                always_comb sticky = |extended[RSHIFT-2:0];
            end
            always_comb begin
                case (ROUNDING)
                    1:       round_up = guard;
                    2:       round_up = guard & (sticky | extended[RSHIFT]);
                    default: round_up = 1'b0;
                endcase
            end
        end
    endgenerate

    // Input bits above the output's top (its sign bit too, when signed) when nothing is added to
    // them: three or fewer, and "in range" (all of them equal to the sign) fits one LUT4 with an
    // output bit, so no comparison is built (synth_ecp5 maps one to a carry chain: a 20-bit sum to
    // u8.4 5 CCU2C + 8 LUT4 -> 8 LUT4); more, and two comparisons share that work better.
    localparam int TOP = OUT_SIGNED ? OUT_WIDTH - 1 : OUT_WIDTH;
    localparam int HIGH_INPUTS = IN_WIDTH + LSHIFT - RSHIFT - TOP;
    generate
        if ((ROUNDING == 0 || RSHIFT == 0) && HIGH_INPUTS <= 3) begin : g_few_high
            logic [EXT_W-1:TOP] high;
            logic in_range;
            always_comb rounded = scaled + {{(EXT_W - 1){1'b0}}, round_up};
            assign high = rounded[EXT_W-1:TOP];
            assign in_range = OVERFLOW == 1 || high == '0 || (OUT_SIGNED && high == '1);
            assign data_out = in_range ? rounded[OUT_WIDTH-1:0]
                            : rounded[EXT_W-1] ? MIN_CODE[OUT_WIDTH-1:0] : MAX_CODE[OUT_WIDTH-1:0];
        end else begin : g_compare
            always_comb begin
                rounded = scaled + {{(EXT_W - 1){1'b0}}, round_up};
                if (OVERFLOW == 1 || (rounded <= MAX_CODE && rounded >= MIN_CODE)) begin
                    data_out = rounded[OUT_WIDTH-1:0];
                end else if (rounded > MAX_CODE) begin
                    data_out = MAX_CODE[OUT_WIDTH-1:0];
                end else begin
                    data_out = MIN_CODE[OUT_WIDTH-1:0];
                end
            end
        end
    endgenerate
endmodule
`default_nettype wire
