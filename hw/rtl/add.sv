`default_nettype none
// add: elementwise sum of two streams joined in lockstep, PAR elements per beat, the exact
// function of flow.nn.QuantAdd.forward_codes. A beat is taken from both inputs in the same
// cycle (each input's ready needs the other input's valid). Per lane, both operands are aligned
// by a left shift to the common frac F = max(A_FRAC, B_FRAC), sign- or zero-extended and summed
// without loss in SUM_WIDTH signed bits (flow.nn.add_sum_format), then cast once to the output
// format by fixed_cast_lane. ROUNDING: 0 floor, 1 half_up, 2 half_even. OVERFLOW: 0 saturate,
// 1 wrap. Registered through a skid buffer: latency one cycle, one beat per cycle.
module add #(
    parameter int PAR        = 1,
    parameter int A_WIDTH    = 8,
    parameter int A_FRAC     = 4,
    parameter bit A_SIGNED   = 1'b1,
    parameter int B_WIDTH    = 8,
    parameter int B_FRAC     = 4,
    parameter bit B_SIGNED   = 1'b1,
    parameter int OUT_WIDTH  = 8,
    parameter int OUT_FRAC   = 4,
    parameter bit OUT_SIGNED = 1'b1,
    parameter int ROUNDING   = 1,
    parameter int OVERFLOW   = 0
) (
    input  wire logic                clk,
    input  wire logic                rst,
    input  wire logic [PAR*A_WIDTH-1:0]   s_axis_a_tdata,
    input  wire logic                s_axis_a_tvalid,
    output logic                     s_axis_a_tready,
    input  wire logic [PAR*B_WIDTH-1:0]   s_axis_b_tdata,
    input  wire logic                s_axis_b_tvalid,
    output logic                     s_axis_b_tready,
    output logic [PAR*OUT_WIDTH-1:0] m_axis_tdata,
    output logic                     m_axis_tvalid,
    input  wire logic                m_axis_tready
);
    localparam int FRAC      = A_FRAC > B_FRAC ? A_FRAC : B_FRAC;
    localparam int A_SHIFT   = FRAC - A_FRAC;
    localparam int B_SHIFT   = FRAC - B_FRAC;
    // Each operand aligned to FRAC, as a signed number (an unsigned operand gains a sign bit).
    localparam int A_ALIGNED = A_WIDTH + A_SHIFT + (A_SIGNED ? 0 : 1);
    localparam int B_ALIGNED = B_WIDTH + B_SHIFT + (B_SIGNED ? 0 : 1);
    localparam int SUM_WIDTH = (A_ALIGNED > B_ALIGNED ? A_ALIGNED : B_ALIGNED) + 1;

    generate
        if (PAR < 1) begin : g_bad_par
            $error("add: PAR must be at least 1");
        end
        if (ROUNDING < 0 || ROUNDING > 2) begin : g_bad_rounding
            $error("add: ROUNDING must be 0 (floor), 1 (half_up) or 2 (half_even)");
        end
        if (OVERFLOW < 0 || OVERFLOW > 1) begin : g_bad_overflow
            $error("add: OVERFLOW must be 0 (saturate) or 1 (wrap)");
        end
    endgenerate

    logic                     join_valid;
    logic                     join_ready;  // the skid buffer's ready: a register, no path from m_axis_tready
    logic [PAR*OUT_WIDTH-1:0] sum_data;

    assign join_valid      = s_axis_a_tvalid && s_axis_b_tvalid;
    assign s_axis_a_tready = s_axis_b_tvalid && join_ready;
    assign s_axis_b_tready = s_axis_a_tvalid && join_ready;

    for (genvar lane = 0; lane < PAR; lane++) begin : g_lane
        logic [A_WIDTH-1:0]          a_code;
        logic [B_WIDTH-1:0]          b_code;
        logic signed [SUM_WIDTH-1:0] a_aligned;
        logic signed [SUM_WIDTH-1:0] b_aligned;
        logic signed [SUM_WIDTH-1:0] sum;

        always_comb begin
            a_code    = s_axis_a_tdata[lane*A_WIDTH +: A_WIDTH];
            b_code    = s_axis_b_tdata[lane*B_WIDTH +: B_WIDTH];
            a_aligned = {{(SUM_WIDTH - A_WIDTH){A_SIGNED & a_code[A_WIDTH-1]}}, a_code} <<< A_SHIFT;
            b_aligned = {{(SUM_WIDTH - B_WIDTH){B_SIGNED & b_code[B_WIDTH-1]}}, b_code} <<< B_SHIFT;
            sum       = a_aligned + b_aligned;
        end

        fixed_cast_lane #(
            .IN_WIDTH(SUM_WIDTH), .IN_FRAC(FRAC), .IN_SIGNED(1'b1),
            .OUT_WIDTH(OUT_WIDTH), .OUT_FRAC(OUT_FRAC), .OUT_SIGNED(OUT_SIGNED),
            .ROUNDING(ROUNDING), .OVERFLOW(OVERFLOW)
        ) u_cast (
            .data_in (sum),
            .data_out(sum_data[lane*OUT_WIDTH +: OUT_WIDTH])
        );
    end

    skid_buffer #(.DATA_WIDTH(PAR * OUT_WIDTH)) u_out (
        .clk, .rst,
        .s_axis_tdata(sum_data), .s_axis_tvalid(join_valid), .s_axis_tready(join_ready),
        .m_axis_tdata, .m_axis_tvalid, .m_axis_tready
    );
endmodule
`default_nettype wire
