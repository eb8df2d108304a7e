`default_nettype none
// tanh: stream tanh on PAR signed elements per beat, as flow.nn.QuantTanh: tanh x = 2 s - 1 with
// s = softmax(x, -x)_0 by flow.arith.int_softmax, with its constants (softmax.sv's exp):
//   1. EXP    the pair's maximum is |x|, so its shifted codes are 0 and -2|x|: n = 2|x| << WORK_SHIFT,
//             z = (n * MAGIC) >> MAGIC_SHIFT (floor(n / LN2) over the whole input range),
//             e = round((EXP_A (EXP_B - (n - z LN2))**2 + (EXP_C << C_SHIFT)) / 2**(z + POLY_SHIFT)),
//             half up; e0 is the same at n = 0. The sum d = e0 + e, the numerator e0 (x >= 0) or e;
//   2. DIVIDE q = floor(2**RECIP_BITS / d) by restoring division, one quotient bit a pipeline
//             stage, so a beat every cycle. d >= e0 > 2**(EXP_FRAC-1) (exp(0) is 0.9998), so the
//             first EXP_FRAC quotient bits are 0 and the remainder after them is 2**(EXP_FRAC-1):
//             the pipeline starts there and runs the other OUT_FRAC + GUARD + 1 steps;
//   3. OUT    s = round(num q / 2**(EXP_FRAC + GUARD)) half up, y = 2 s - 2**OUT_FRAC, signed
//             OUT_FRAC + 2 bits (both -1.0 and 1.0 are reachable), through a skid buffer.
// A beat every cycle; latency OUT_FRAC + GUARD + 3 cycles (flow.circuits.components.tanh_cycles). The
// pipeline advances while its last stage is empty or the skid buffer takes, so no combinational
// path runs from m_axis_tready to s_axis_tready.
module tanh #(
    parameter int PAR         = 1,
    parameter int IN_WIDTH    = 16,
    parameter int OUT_FRAC    = 8,
    parameter int EXP_FRAC    = 12,
    parameter int GUARD       = 4,
    parameter int WORK_SHIFT  = 4,
    parameter int LN2         = 2839,
    parameter int MAGIC       = 1548,
    parameter int MAGIC_SHIFT = 22,
    parameter int EXP_A       = 5874,
    parameter int EXP_B       = 5542,
    parameter int EXP_C       = 23085449,
    parameter int C_SHIFT     = 12,
    parameter int POLY_SHIFT  = 26
) (
    input  wire logic                    clk,
    input  wire logic                    rst,
    input  wire logic [PAR*IN_WIDTH-1:0] s_axis_tdata,
    input  wire logic                    s_axis_tvalid,
    output logic                         s_axis_tready,
    output logic [PAR*(OUT_FRAC+2)-1:0]  m_axis_tdata,
    output logic                         m_axis_tvalid,
    input  wire logic                    m_axis_tready
);
    localparam int OUT_W      = OUT_FRAC + 2;
    localparam int RECIP_BITS = EXP_FRAC + OUT_FRAC + GUARD;
    localparam int OUT_SHIFT  = EXP_FRAC + GUARD;
    localparam int N_W        = IN_WIDTH + 1 + WORK_SHIFT;           // n = 2|x| << WORK_SHIFT
    localparam int MAGIC_W    = $clog2(MAGIC + 1);
    localparam int LN2_W      = $clog2(LN2 + 1);
    localparam int B_W        = $clog2(EXP_B + 1);
    localparam int A_W        = $clog2(EXP_A + 1);
    localparam int C_W        = $clog2(EXP_C + 1) + C_SHIFT;
    localparam int SQ_W       = A_W + 2 * B_W;
    localparam int POLY_W     = (SQ_W > C_W ? SQ_W : C_W) + 1;
    localparam int Z_W        = N_W + MAGIC_W;                        // the product before its shift
    localparam int SH_W       = $clog2(N_W + POLY_SHIFT + POLY_W + 2) + 1;
    localparam int EXP_W      = EXP_FRAC + 2;
    localparam int SUM_W      = EXP_W + 1;
    localparam int SKIP       = EXP_FRAC;                             // leading quotient bits, all 0
    localparam int Q_W        = RECIP_BITS + 1 - SKIP;                // the quotient's other bits
    localparam int PROD_W     = EXP_W + Q_W;
    localparam int STAGES     = Q_W + 1;                              // the exp register, then a quotient bit each

    generate
        if (PAR < 1) begin : g_bad_par
            $error("tanh: PAR must be at least 1");
        end
        if (EXP_FRAC < 2) begin : g_bad_exp_frac
            $error("tanh: EXP_FRAC must be at least 2 (the divider skips its first EXP_FRAC steps)");
        end
        if (Z_W > 62 || POLY_W > 62 || PROD_W > 62) begin : g_too_wide
            $error("tanh: a product is wider than 62 bits; narrow the input or lower EXP_FRAC/OUT_FRAC");
        end
    endgenerate

    // exp(-n 2**-(IN_FRAC + WORK_SHIFT)) at EXP_FRAC, as softmax.sv's lanes
    function automatic logic [EXP_W-1:0] exp_of(input logic [N_W-1:0] n);
        logic [Z_W-1:0]       scaled;
        logic [N_W-1:0]       z;
        logic [N_W+LN2_W-1:0] z_ln2;
        logic [B_W-1:0]       t;
        logic [POLY_W-1:0]    poly;
        logic [SH_W-1:0]      shift;
        /* verilator lint_off UNUSEDSIGNAL */  // e < 2**EXP_W: the high bits are zero
        logic [POLY_W:0]      rounded;
        /* verilator lint_on UNUSEDSIGNAL */
        scaled = {{(Z_W - N_W){1'b0}}, n} * {{(Z_W - MAGIC_W){1'b0}}, MAGIC_W'(MAGIC)};
        z      = N_W'(scaled >> MAGIC_SHIFT);
        z_ln2  = {{LN2_W{1'b0}}, z} * {{N_W{1'b0}}, LN2_W'(LN2)};
        t      = B_W'(EXP_B) - B_W'({{LN2_W{1'b0}}, n} - z_ln2);
        poly   = POLY_W'(EXP_A) * POLY_W'(t) * POLY_W'(t) + (POLY_W'(EXP_C) << C_SHIFT);
        shift  = SH_W'(z) + SH_W'(POLY_SHIFT);
        if (z > N_W'(POLY_W) || shift > SH_W'(POLY_W)) begin
            rounded = '0;
        end else if (shift == '0) begin
            rounded = {1'b0, poly};
        end else begin
            rounded = ({1'b0, poly} + ((POLY_W + 1)'(1) << (shift - SH_W'(1)))) >> shift;
        end
        exp_of = EXP_W'(rounded);
    endfunction

    logic [EXP_W-1:0] e_zero;
    assign e_zero = exp_of('0);

    logic [STAGES-1:0] valid;
    logic              advance;
    logic              out_ready;
    logic [PAR*OUT_W-1:0] tanh_data;

    assign advance       = !valid[STAGES-1] || out_ready;
    assign s_axis_tready = advance;

    always_ff @(posedge clk) begin
        if (rst) begin
            valid <= '0;
        end else if (advance) begin
            valid <= {valid[STAGES-2:0], s_axis_tvalid};
        end
    end

    for (genvar lane = 0; lane < PAR; lane++) begin : g_lane
        logic [SUM_W-1:0] divisor   [STAGES];
        logic [EXP_W-1:0] numerator [STAGES];
        logic [SUM_W-1:0] remainder [STAGES];
        logic [Q_W-1:0]   quotient  [STAGES];
        logic [IN_WIDTH-1:0] x;
        logic [IN_WIDTH:0]   magnitude;
        logic [EXP_W-1:0]    e;

        always_comb begin
            x         = s_axis_tdata[lane*IN_WIDTH +: IN_WIDTH];
            magnitude = x[IN_WIDTH-1] ? -{x[IN_WIDTH-1], x} : {1'b0, x};
            e         = exp_of(N_W'({magnitude, 1'b0}) << WORK_SHIFT);
        end

        always_ff @(posedge clk) begin
            if (advance) begin
                divisor[0]   <= SUM_W'(e_zero) + SUM_W'(e);
                numerator[0] <= x[IN_WIDTH-1] ? e : e_zero;
                remainder[0] <= SUM_W'(1) << (SKIP - 1);  // 2**RECIP_BITS's leading 1 after SKIP steps
                quotient[0]  <= '0;
            end
        end

        // the dividend's remaining bits are zeros
        for (genvar k = 1; k < STAGES; k++) begin : g_step
            logic [SUM_W:0] trial;
            assign trial = {remainder[k-1], 1'b0};
            always_ff @(posedge clk) begin
                if (advance) begin
                    divisor[k]   <= divisor[k-1];
                    numerator[k] <= numerator[k-1];
                    if (trial >= {1'b0, divisor[k-1]}) begin
                        remainder[k] <= SUM_W'(trial - {1'b0, divisor[k-1]});
                        quotient[k]  <= {quotient[k-1][Q_W-2:0], 1'b1};
                    end else begin
                        remainder[k] <= SUM_W'(trial);
                        quotient[k]  <= {quotient[k-1][Q_W-2:0], 1'b0};
                    end
                end
            end
        end

        logic [PROD_W-1:0] product;
        logic [OUT_W-1:0]  half;
        always_comb begin
            product = PROD_W'(numerator[STAGES-1]) * PROD_W'(quotient[STAGES-1]) + (PROD_W'(1) << (OUT_SHIFT - 1));
            half    = OUT_W'(product >> OUT_SHIFT);
            tanh_data[lane*OUT_W +: OUT_W] = (half << 1) - (OUT_W'(1) << OUT_FRAC);
        end
    end

    skid_buffer #(.DATA_WIDTH(PAR * OUT_W)) u_out (
        .clk, .rst,
        .s_axis_tdata(tanh_data), .s_axis_tvalid(valid[STAGES-1]), .s_axis_tready(out_ready),
        .m_axis_tdata, .m_axis_tvalid, .m_axis_tready
    );
endmodule
`default_nettype wire
