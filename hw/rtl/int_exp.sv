`default_nettype none
// int_exp: e = exp(-n 2**-(IN_FRAC + WORK_SHIFT)) at EXP_FRAC, combinational, as flow.arith.int_exp
// (I-BERT's second-order polynomial), for an unsigned n already at the working frac:
//   z = floor(n / LN2) as (n * MAGIC) >> MAGIC_SHIFT (equal over the whole input range),
//   r = n - z LN2, e = round((EXP_A (EXP_B - r)**2 + (EXP_C << C_SHIFT)) / 2**(z + POLY_SHIFT)),
//   half up; a shift past the polynomial's width gives 0.
// softmax.sv (exp(x - max)) and tanh.sv (exp(-2|x|)) instantiate one a lane.
module int_exp #(
    parameter int N_W         = 21,
    parameter int EXP_FRAC    = 12,
    parameter int LN2         = 2839,
    parameter int MAGIC       = 1548,
    parameter int MAGIC_SHIFT = 22,
    parameter int EXP_A       = 5874,
    parameter int EXP_B       = 5542,
    parameter int EXP_C       = 23085449,
    parameter int C_SHIFT     = 12,
    parameter int POLY_SHIFT  = 26
) (
    input  wire logic [N_W-1:0]      n,
    output logic      [EXP_FRAC+1:0] e
);
    localparam int MAGIC_W = $clog2(MAGIC + 1);
    localparam int LN2_W   = $clog2(LN2 + 1);
    localparam int B_W     = $clog2(EXP_B + 1);
    localparam int A_W     = $clog2(EXP_A + 1);
    localparam int C_W     = $clog2(EXP_C + 1) + C_SHIFT;
    localparam int SQ_W    = A_W + 2 * B_W;
    localparam int POLY_W  = (SQ_W > C_W ? SQ_W : C_W) + 1;
    localparam int Z_W     = N_W + MAGIC_W;                        // the product before its shift
    localparam int SH_W    = $clog2(N_W + POLY_SHIFT + POLY_W + 2) + 1;
    localparam int EXP_W   = EXP_FRAC + 2;

    generate
        if (Z_W > 62 || POLY_W > 62) begin : g_too_wide
            $error("int_exp: a product is wider than 62 bits; narrow the input or lower the working frac");
        end
    endgenerate

    logic [Z_W-1:0]       scaled;
    logic [N_W-1:0]       z;
    logic [N_W+LN2_W-1:0] z_ln2;
    logic [B_W-1:0]       t;
    logic [POLY_W-1:0]    poly;
    logic [SH_W-1:0]      shift;
    /* verilator lint_off UNUSEDSIGNAL */  // e < 2**EXP_W: the high bits are zero
    logic [POLY_W:0]      rounded;
    /* verilator lint_on UNUSEDSIGNAL */

    always_comb begin
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
        e = EXP_W'(rounded);
    end
endmodule
`default_nettype wire
