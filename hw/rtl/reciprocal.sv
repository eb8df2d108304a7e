`default_nettype none
// reciprocal: quotient = floor(2**BITS / divisor) by restoring division, one quotient bit per
// cycle, as flow.arith.roots.reciprocal_floor; a zero divisor gives 0 (a row with nothing to
// divide). `clear` readies it for a new divisor; each cycle with `run` takes one step, and
// `last` is high on the step that completes the quotient (BITS + 1 steps after a clear).
// The divisor must stay stable from the first step until the quotient has been read.
module reciprocal #(
    parameter int BITS      = 16,
    parameter int DIV_WIDTH = 16
) (
    input  wire logic                 clk,
    input  wire logic                 clear,
    input  wire logic                 run,
    input  wire logic [DIV_WIDTH-1:0] divisor,
    output logic      [BITS:0]        quotient,
    output logic                      last
);
    localparam int STEP_W = $clog2(BITS + 1) > 0 ? $clog2(BITS + 1) : 1;

    logic [DIV_WIDTH-1:0] remainder;
    logic [BITS:0]        bits;
    logic [STEP_W-1:0]    step;
    logic [DIV_WIDTH:0]   trial;

    // the dividend 2**BITS brings one 1 (the first step) and BITS zeros
    assign trial    = {remainder, step == STEP_W'(BITS)};
    assign last     = step == '0;
    assign quotient = divisor == '0 ? '0 : bits;

    always_ff @(posedge clk) begin
        if (clear) begin
            remainder <= '0;
            step      <= STEP_W'(BITS);
        end else if (run) begin
            if (trial >= {1'b0, divisor}) begin
                remainder <= DIV_WIDTH'(trial - {1'b0, divisor});
                bits      <= {bits[BITS-1:0], 1'b1};
            end else begin
                remainder <= DIV_WIDTH'(trial);
                bits      <= {bits[BITS-1:0], 1'b0};
            end
            step <= step - STEP_W'(1);
        end
    end
endmodule
`default_nettype wire
