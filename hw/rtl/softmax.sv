`default_nettype none
// softmax: softmax over rows of LENGTH signed elements, PAR per beat, as flow.arith.int_softmax.
//   1. LOAD   the row is buffered while its maximum is found (one beat per cycle);
//   2. EXP    each element's exp(x - max), PAR per cycle (int_exp.sv), is stored and summed: n = max - x at the
//             working frac (<< WORK_SHIFT); z = floor(n / LN2) as (n * MAGIC) >> MAGIC_SHIFT (equal
//             over the whole input range); r = n - z LN2; e = round((EXP_A (EXP_B - r)**2 +
//             (EXP_C << C_SHIFT)) / 2**(z + POLY_SHIFT)), half up (I-BERT's polynomial);
//   3. DIVIDE reciprocal.sv forms q = floor(2**RECIP_BITS / sum), one bit per cycle;
//   4. EMIT   the row leaves as round(e q / 2**(EXP_FRAC + GUARD)), unsigned codes at OUT_FRAC
//             (OUT_FRAC + 1 bits: 1.0 is the largest), one beat per cycle.
// One row at a time: latency 2 LENGTH/PAR + RECIP_BITS + 1 cycles, a row every
// 3 LENGTH/PAR + RECIP_BITS + 1 (flow.circuits.components.softmax_cycles).
module softmax #(
    parameter int LENGTH      = 8,
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
    input  wire logic [PAR*IN_WIDTH-1:0]      s_axis_tdata,
    input  wire logic                    s_axis_tvalid,
    output logic                         s_axis_tready,
    output logic [PAR*(OUT_FRAC+1)-1:0]  m_axis_tdata,
    output logic                         m_axis_tvalid,
    input  wire logic                    m_axis_tready
);
    localparam int BEATS      = LENGTH / PAR;
    localparam int IDX_W      = BEATS > 1 ? $clog2(BEATS) : 1;
    localparam int ADDR_W     = LENGTH > 1 ? $clog2(LENGTH) : 1;
    localparam int OUT_W      = OUT_FRAC + 1;
    localparam int RECIP_BITS = EXP_FRAC + OUT_FRAC + GUARD;
    localparam int OUT_SHIFT  = EXP_FRAC + GUARD;
    localparam int N_W        = IN_WIDTH + 1 + WORK_SHIFT;           // n = (max - x) << WORK_SHIFT
    localparam int EXP_W      = EXP_FRAC + 2;
    localparam int SUM_W      = EXP_W + $clog2(LENGTH + 1);
    localparam int Q_W        = RECIP_BITS + 1;
    localparam int PROD_W     = EXP_W + Q_W;

    generate
        if (PAR < 1 || LENGTH % PAR != 0) begin : g_bad_par
            $error("softmax: PAR must divide LENGTH (the row length); pick a PAR that divides it");
        end
        if (PROD_W > 62) begin : g_too_wide
            $error("softmax: a product is wider than 62 bits; narrow the input or lower EXP_FRAC/OUT_FRAC");
        end
    endgenerate

    typedef enum logic [1:0] {LOAD, EXP, DIVIDE, EMIT} state_t;
    state_t state;

    logic [IN_WIDTH-1:0] row  [LENGTH];
    logic [EXP_W-1:0]    exps [LENGTH];
    logic [IDX_W-1:0]    beat;
    logic [IN_WIDTH-1:0] row_max;
    logic [SUM_W-1:0]    sum;
    logic [Q_W-1:0]      quotient;
    logic                divided;
    logic                last_beat;

    assign last_beat     = beat == IDX_W'(BEATS - 1);
    assign s_axis_tready = state == LOAD;
    assign m_axis_tvalid = state == EMIT;

    // ---- the maximum of a beat, then of the row so far ----
    logic [IN_WIDTH-1:0] beat_max;
    always_comb begin
        beat_max = s_axis_tdata[IN_WIDTH-1:0];
        for (int lane = 1; lane < PAR; lane++) begin
            if ($signed(s_axis_tdata[lane*IN_WIDTH +: IN_WIDTH]) > $signed(beat_max)) begin
                beat_max = s_axis_tdata[lane*IN_WIDTH +: IN_WIDTH];
            end
        end
    end

    // ---- exp of PAR elements of the buffered row ----
    logic [EXP_W-1:0] lane_exp [PAR];
    logic [SUM_W-1:0] beat_sum;
    for (genvar lane = 0; lane < PAR; lane++) begin : g_exp
        logic [IN_WIDTH:0] diff;
        logic [N_W-1:0]    n;
        always_comb begin
            diff = {row_max[IN_WIDTH-1], row_max} - {row[ADDR_W'(beat) * ADDR_W'(PAR) + ADDR_W'(lane)][IN_WIDTH-1],
                                                      row[ADDR_W'(beat) * ADDR_W'(PAR) + ADDR_W'(lane)]};
            n    = {{(N_W - IN_WIDTH - 1){1'b0}}, diff} << WORK_SHIFT;
        end
        int_exp #(
            .N_W(N_W), .EXP_FRAC(EXP_FRAC), .LN2(LN2), .MAGIC(MAGIC), .MAGIC_SHIFT(MAGIC_SHIFT), .EXP_A(EXP_A),
            .EXP_B(EXP_B), .EXP_C(EXP_C), .C_SHIFT(C_SHIFT), .POLY_SHIFT(POLY_SHIFT)
        ) u_exp (.n(n), .e(lane_exp[lane]));
    end

    always_comb begin
        beat_sum = '0;
        for (int lane = 0; lane < PAR; lane++) begin
            beat_sum = beat_sum + SUM_W'(lane_exp[lane]);
        end
    end

    // ---- q = floor(2**RECIP_BITS / sum), one bit per cycle in DIVIDE ----
    reciprocal #(.BITS(RECIP_BITS), .DIV_WIDTH(SUM_W)) u_reciprocal (
        .clk(clk), .clear(state == EXP), .run(state == DIVIDE), .divisor(sum), .quotient(quotient), .last(divided)
    );

    always_ff @(posedge clk) begin
        if (rst) begin
            state <= LOAD;
            beat  <= '0;
        end else begin
            case (state)
                LOAD: if (s_axis_tvalid) begin
                    for (int lane = 0; lane < PAR; lane++) begin
                        row[ADDR_W'(beat) * ADDR_W'(PAR) + ADDR_W'(lane)] <= s_axis_tdata[lane*IN_WIDTH +: IN_WIDTH];
                    end
                    if (beat == '0 || $signed(beat_max) > $signed(row_max)) row_max <= beat_max;
                    beat  <= last_beat ? '0 : beat + IDX_W'(1);
                    state <= last_beat ? EXP : LOAD;
                end
                EXP: begin
                    for (int lane = 0; lane < PAR; lane++) begin
                        exps[ADDR_W'(beat) * ADDR_W'(PAR) + ADDR_W'(lane)] <= lane_exp[lane];
                    end
                    sum       <= (beat == '0 ? '0 : sum) + beat_sum;
                    beat      <= last_beat ? '0 : beat + IDX_W'(1);
                    state     <= last_beat ? DIVIDE : EXP;
                end
                DIVIDE: state <= divided ? EMIT : DIVIDE;
                EMIT: if (m_axis_tready) begin
                    beat  <= last_beat ? '0 : beat + IDX_W'(1);
                    state <= last_beat ? LOAD : EMIT;
                end
            endcase
        end
    end

    // ---- the row leaves: round(e q / 2**OUT_SHIFT), half up ----
    for (genvar lane = 0; lane < PAR; lane++) begin : g_out
        logic [PROD_W-1:0] product;
        always_comb begin
            product = PROD_W'(exps[ADDR_W'(beat) * ADDR_W'(PAR) + ADDR_W'(lane)]) * PROD_W'(quotient)
                      + (PROD_W'(1) << (OUT_SHIFT - 1));
            m_axis_tdata[lane*OUT_W +: OUT_W] = OUT_W'(product >> OUT_SHIFT);
        end
    end
endmodule
`default_nettype wire
