`default_nettype none
// layer_norm: LayerNorm over rows of LENGTH signed elements, PAR per beat, as flow.arith.int_layer_norm.
//   1. LOAD   the row is buffered while S = sum q and Q = sum q**2 accumulate exactly;
//   2. SETUP  V = LENGTH Q - S**2 + EPS (LENGTH**2 times the variance, plus eps in codes);
//   3. ROOT   root = floor(sqrt(V 2**(2 ROOT_FRAC))) by the restoring digit recurrence, one root
//             bit (two radicand bits) per cycle, ROOT_STEPS cycles;
//   4. DIVIDE reciprocal.sv forms r = floor(2**(NORM_FRAC + ROOT_FRAC + GUARD) / root);
//   5. EMIT   n = round((LENGTH q - S) r / 2**GUARD) at NORM_FRAC, then WEIGHTS[i] n +
//             (BIASES[i] << NORM_FRAC) at AFF_FRAC + NORM_FRAC, one cast (half up, saturate) to
//             the output format, one beat per cycle.
// One row at a time: latency LENGTH/PAR + ROOT_STEPS + RECIP_BITS + 2 cycles, a row every
// 2 LENGTH/PAR + ROOT_STEPS + RECIP_BITS + 2 (flow.circuits.components.layer_norm_cycles).
module layer_norm #(
    parameter int LENGTH     = 8,
    parameter int PAR        = 1,
    parameter int IN_WIDTH   = 8,
    parameter int OUT_WIDTH  = 8,
    parameter int OUT_FRAC   = 4,
    parameter int AFF_WIDTH  = 8,
    parameter int AFF_FRAC   = 6,
    parameter int NORM_FRAC  = 8,
    parameter int GUARD      = 14,
    parameter int ROOT_FRAC  = 8,
    parameter int EPS        = 0,
    parameter int ROOT_STEPS = 20,
    parameter logic [LENGTH*AFF_WIDTH-1:0] WEIGHTS = '0,
    parameter logic [LENGTH*AFF_WIDTH-1:0] BIASES  = '0
) (
    input  wire logic                      clk,
    input  wire logic                      rst,
    input  wire logic [PAR*IN_WIDTH-1:0]   s_axis_tdata,
    input  wire logic                      s_axis_tvalid,
    output logic                           s_axis_tready,
    output logic      [PAR*OUT_WIDTH-1:0]  m_axis_tdata,
    output logic                           m_axis_tvalid,
    input  wire logic                      m_axis_tready
);
    localparam int BEATS      = LENGTH / PAR;
    localparam int IDX_W      = BEATS > 1 ? $clog2(BEATS) : 1;
    localparam int ADDR_W     = LENGTH > 1 ? $clog2(LENGTH) : 1;
    localparam int N_BITS     = $clog2(LENGTH + 1);
    localparam int S_W        = IN_WIDTH + N_BITS + 1;                // signed sum
    localparam int SQ_W       = 2 * IN_WIDTH + N_BITS;                // unsigned sum of squares
    localparam int V_W        = SQ_W + N_BITS + 2;                    // signed: N Q - S**2 + EPS >= 0
    localparam int RAD_W      = 2 * ROOT_STEPS;
    localparam int REM_W      = ROOT_STEPS + 2;
    localparam int RECIP_BITS = NORM_FRAC + ROOT_FRAC + GUARD;
    localparam int Q_W        = RECIP_BITS + 1;
    localparam int C_W        = IN_WIDTH + N_BITS + 2;                // signed: N q - S
    localparam int P_W        = C_W + Q_W + 1;                        // (N q - S) r
    localparam int NORM_W     = NORM_FRAC + N_BITS + 3;               // |n| < sqrt(N) 2**(NORM_FRAC + 1)
    localparam int AFFINE_W   = AFF_WIDTH + NORM_W + 1;

    generate
        if (PAR < 1 || LENGTH % PAR != 0) begin : g_bad_par
            $error("layer_norm: PAR must divide LENGTH (the features); pick a PAR that divides it");
        end
        if (GUARD < 1) begin : g_bad_guard
            $error("layer_norm: GUARD must be at least 1");
        end
    endgenerate

    typedef enum logic [2:0] {LOAD, SETUP, ROOT, DIVIDE, EMIT} state_t;
    state_t state;

    logic signed [IN_WIDTH-1:0] row [LENGTH];
    logic [IDX_W-1:0]           beat;
    logic                       last_beat;
    logic signed [S_W-1:0]      sum;
    logic [SQ_W-1:0]            squares;
    logic [RAD_W-1:0]           radicand;
    logic [REM_W-1:0]           remainder;
    logic [ROOT_STEPS-1:0]      root;
    logic [$clog2(ROOT_STEPS + 1)-1:0] step;
    logic [Q_W-1:0]             quotient;
    logic                       divided;

    assign last_beat     = beat == IDX_W'(BEATS - 1);
    assign s_axis_tready = state == LOAD;
    assign m_axis_tvalid = state == EMIT;

    // ---- the beat's sum and sum of squares ----
    logic signed [S_W-1:0] beat_sum;
    logic [SQ_W-1:0]       beat_squares;
    always_comb begin
        beat_sum     = '0;
        beat_squares = '0;
        for (int lane = 0; lane < PAR; lane++) begin
            beat_sum     = beat_sum + S_W'($signed(s_axis_tdata[lane*IN_WIDTH +: IN_WIDTH]));
            beat_squares = beat_squares + SQ_W'($signed(s_axis_tdata[lane*IN_WIDTH +: IN_WIDTH]))
                                        * SQ_W'($signed(s_axis_tdata[lane*IN_WIDTH +: IN_WIDTH]));
        end
    end

    // ---- LENGTH**2 var + EPS, and the square root's next digit ----
    logic signed [V_W-1:0] spread;
    logic [REM_W+1:0]      current;
    logic [REM_W+1:0]      trial;
    assign spread  = V_W'(LENGTH) * V_W'(squares) - V_W'(sum) * V_W'(sum) + V_W'(EPS);
    assign current = {remainder, radicand[RAD_W-1 -: 2]};
    assign trial   = {2'b00, root, 2'b01};

    reciprocal #(.BITS(RECIP_BITS), .DIV_WIDTH(ROOT_STEPS)) u_reciprocal (
        .clk(clk), .clear(state == ROOT), .run(state == DIVIDE), .divisor(root), .quotient(quotient), .last(divided)
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
                    sum     <= (beat == '0 ? '0 : sum) + beat_sum;
                    squares <= (beat == '0 ? '0 : squares) + beat_squares;
                    beat    <= last_beat ? '0 : beat + IDX_W'(1);
                    state   <= last_beat ? SETUP : LOAD;
                end
                SETUP: begin
                    radicand  <= RAD_W'(spread) << (2 * ROOT_FRAC);
                    remainder <= '0;
                    root      <= '0;
                    step      <= '0;
                    state     <= ROOT;
                end
                ROOT: begin
                    if (current >= trial) begin
                        remainder <= REM_W'(current - trial);
                        root      <= {root[ROOT_STEPS-2:0], 1'b1};
                    end else begin
                        remainder <= REM_W'(current);
                        root      <= {root[ROOT_STEPS-2:0], 1'b0};
                    end
                    radicand <= radicand << 2;
                    step     <= step + 1'b1;
                    state    <= step == $clog2(ROOT_STEPS + 1)'(ROOT_STEPS - 1) ? DIVIDE : ROOT;
                end
                DIVIDE: state <= divided ? EMIT : DIVIDE;
                EMIT: if (m_axis_tready) begin
                    beat  <= last_beat ? '0 : beat + IDX_W'(1);
                    state <= last_beat ? LOAD : EMIT;
                end
                default: state <= LOAD;
            endcase
        end
    end

    // ---- the row leaves: normalized, scaled, shifted and cast ----
    for (genvar lane = 0; lane < PAR; lane++) begin : g_out
        logic [ADDR_W-1:0]            index;
        logic signed [C_W-1:0]        centred;
        logic signed [P_W-1:0]        product;
        logic signed [NORM_W-1:0]     normalized;
        logic signed [AFF_WIDTH-1:0]  weight;
        logic signed [AFF_WIDTH-1:0]  bias;
        logic signed [AFFINE_W-1:0]   affine;
        always_comb begin
            index      = ADDR_W'(beat) * ADDR_W'(PAR) + ADDR_W'(lane);
            centred    = C_W'(LENGTH) * C_W'(row[index]) - C_W'(sum);
            product    = P_W'(centred) * $signed({1'b0, quotient}) + (P_W'(1) <<< (GUARD - 1));
            normalized = NORM_W'(product >>> GUARD);
            weight     = WEIGHTS[index * AFF_WIDTH +: AFF_WIDTH];
            bias       = BIASES[index * AFF_WIDTH +: AFF_WIDTH];
            affine     = AFFINE_W'(weight) * AFFINE_W'(normalized) + (AFFINE_W'(bias) <<< NORM_FRAC);
        end

        fixed_cast_lane #(
            .IN_WIDTH(AFFINE_W), .IN_FRAC(AFF_FRAC + NORM_FRAC), .IN_SIGNED(1'b1),
            .OUT_WIDTH(OUT_WIDTH), .OUT_FRAC(OUT_FRAC), .OUT_SIGNED(1'b1),
            .ROUNDING(1), .OVERFLOW(0)
        ) u_cast (
            .data_in (affine),
            .data_out(m_axis_tdata[lane*OUT_WIDTH +: OUT_WIDTH])
        );
    end
endmodule
`default_nettype wire
