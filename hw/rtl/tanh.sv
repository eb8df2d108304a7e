`default_nettype none
// tanh: stream tanh on PAR signed elements per beat, as flow.nn.QuantTanh: tanh x = 2 s - 1 with
// s = softmax(x, -x)_0 by flow.arith.int_softmax, with its constants (int_exp.sv, as softmax.sv):
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
        if (PROD_W > 62) begin : g_too_wide
            $error("tanh: a product is wider than 62 bits; narrow the input or lower EXP_FRAC/OUT_FRAC");
        end
    endgenerate

    logic [EXP_W-1:0] e_zero;
    int_exp #(
        .N_W(N_W), .EXP_FRAC(EXP_FRAC), .LN2(LN2), .MAGIC(MAGIC), .MAGIC_SHIFT(MAGIC_SHIFT), .EXP_A(EXP_A),
        .EXP_B(EXP_B), .EXP_C(EXP_C), .C_SHIFT(C_SHIFT), .POLY_SHIFT(POLY_SHIFT)
    ) u_exp_zero (.n('0), .e(e_zero));

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
        logic [N_W-1:0]      n;

        always_comb begin
            x         = s_axis_tdata[lane*IN_WIDTH +: IN_WIDTH];
            magnitude = x[IN_WIDTH-1] ? -{x[IN_WIDTH-1], x} : {1'b0, x};
            n         = N_W'({magnitude, 1'b0}) << WORK_SHIFT;
        end
        int_exp #(
            .N_W(N_W), .EXP_FRAC(EXP_FRAC), .LN2(LN2), .MAGIC(MAGIC), .MAGIC_SHIFT(MAGIC_SHIFT), .EXP_A(EXP_A),
            .EXP_B(EXP_B), .EXP_C(EXP_C), .C_SHIFT(C_SHIFT), .POLY_SHIFT(POLY_SHIFT)
        ) u_exp (.n(n), .e(e));

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
