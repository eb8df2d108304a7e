`default_nettype none
// gelu: stream GELU (erf form) on PAR signed elements per beat, as flow.arith.int_gelu:
// I-BERT's second-order erf with 1/sqrt(2) folded into the constants.
//   t   = min(|x|, CLIP) - CLIP                       (at IN_FRAC, in [-CLIP, 0])
//   erf = sign(x) * (HALF_A * t * t + 2**ERF_FRAC)    (at ERF_FRAC = 2 IN_FRAC + coef bits)
//   y   = x * (2**ERF_FRAC + erf)                     (twice GELU, at IN_FRAC + ERF_FRAC)
// then one cast to the output format (half up, saturate). Registered through a skid buffer:
// latency one cycle, one beat per cycle.
module gelu #(
    parameter int PAR       = 1,
    parameter int IN_WIDTH  = 16,
    parameter int IN_FRAC   = 8,
    parameter int OUT_WIDTH = 16,
    parameter int OUT_FRAC  = 8,
    parameter int ERF_FRAC  = 30,
    parameter int CLIP      = 640,
    parameter int HALF_A    = -2366
) (
    input  wire logic                clk,
    input  wire logic                rst,
    input  wire logic [PAR*IN_WIDTH-1:0]  s_axis_tdata,
    input  wire logic                s_axis_tvalid,
    output logic                     s_axis_tready,
    output logic [PAR*OUT_WIDTH-1:0] m_axis_tdata,
    output logic                     m_axis_tvalid,
    input  wire logic                m_axis_tready
);
    localparam int ABS_W  = IN_WIDTH + 1;                     // |x| of the most negative code
    localparam int T_W    = $clog2(CLIP + 1) + 1;             // t in [-CLIP, 0]
    localparam int A_W    = $clog2(-HALF_A + 1) + 1;          // HALF_A < 0
    localparam int ERF_W  = ERF_FRAC + 3;                     // 2**ERF_FRAC + erf in [0, 2**(ERF_FRAC+1)]
    localparam int PROD_W = 2 * T_W + A_W;                    // HALF_A t t
    localparam int W_PE   = PROD_W > ERF_W ? PROD_W : ERF_W;
    localparam int W      = (W_PE > ABS_W ? W_PE : ABS_W) + 1;  // every step of the polynomial
    localparam int Y_W    = IN_WIDTH + W;                     // x (2**ERF_FRAC + erf)

    generate
        if (HALF_A >= 0) begin : g_bad_coefficient
            $error("gelu: HALF_A must be negative (a / 2 of I-BERT's erf, a = -0.2888)");
        end
        if (Y_W > 62) begin : g_too_wide
            $error("gelu: x (1 + erf) is wider than 62 bits; lower IN_FRAC or the coefficient bits");
        end
    endgenerate

    localparam logic signed [W-1:0] CLIP_W = W'(CLIP);
    localparam logic signed [W-1:0] COEF_W = W'(HALF_A);
    localparam logic signed [W-1:0] ONE_W  = W'(1) <<< ERF_FRAC;

    logic [PAR*OUT_WIDTH-1:0] gelu_data;

    for (genvar lane = 0; lane < PAR; lane++) begin : g_lane
        logic [IN_WIDTH-1:0]   x;
        logic signed [W-1:0]   x_w;
        logic signed [W-1:0]   x_abs;
        logic signed [W-1:0]   t;
        logic signed [W-1:0]   magnitude;
        logic signed [W-1:0]   factor;
        logic signed [Y_W-1:0] x_y;
        logic signed [Y_W-1:0] factor_y;
        logic signed [Y_W-1:0] doubled;

        always_comb begin
            x         = s_axis_tdata[lane*IN_WIDTH +: IN_WIDTH];
            x_w       = {{(W - IN_WIDTH){x[IN_WIDTH-1]}}, x};
            x_abs     = x[IN_WIDTH-1] ? -x_w : x_w;
            t         = (x_abs < CLIP_W ? x_abs : CLIP_W) - CLIP_W;
            magnitude = t * t * COEF_W + ONE_W;
            factor    = x[IN_WIDTH-1] ? ONE_W - magnitude : ONE_W + magnitude;
            x_y       = {{(Y_W - IN_WIDTH){x[IN_WIDTH-1]}}, x};
            factor_y  = {{(Y_W - W){factor[W-1]}}, factor};
            doubled   = x_y * factor_y;
        end

        fixed_cast_lane #(
            .IN_WIDTH(Y_W), .IN_FRAC(IN_FRAC + ERF_FRAC + 1), .IN_SIGNED(1'b1),
            .OUT_WIDTH(OUT_WIDTH), .OUT_FRAC(OUT_FRAC), .OUT_SIGNED(1'b1),
            .ROUNDING(1), .OVERFLOW(0)
        ) u_cast (
            .data_in (doubled),
            .data_out(gelu_data[lane*OUT_WIDTH +: OUT_WIDTH])
        );
    end

    skid_buffer #(.DATA_WIDTH(PAR * OUT_WIDTH)) u_out (
        .clk, .rst,
        .s_axis_tdata(gelu_data), .s_axis_tvalid, .s_axis_tready,
        .m_axis_tdata, .m_axis_tvalid, .m_axis_tready
    );
endmodule
`default_nettype wire
