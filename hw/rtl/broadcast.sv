`default_nettype none
// broadcast: an eager fork of one stream into two identical streams a and b. There is no data
// register: both outputs show the input beat directly. A one-bit register per output, done_X,
// records that output X already took the current input beat, so each output can be
// backpressured on its own and still sees every beat exactly once, in order. The input beat is
// consumed in the cycle the last output that still needs it takes it. Latency zero cycles,
// one beat per cycle when both outputs are ready. s_axis_tready depends combinationally on
// both outputs' ready; no valid depends on the ready of its own port.
module broadcast #(
    parameter int WIDTH = 8
) (
    input  wire logic        clk,
    input  wire logic        rst,
    input  wire logic [WIDTH-1:0] s_axis_tdata,
    input  wire logic        s_axis_tvalid,
    output logic             s_axis_tready,
    output logic [WIDTH-1:0] m_axis_a_tdata,
    output logic             m_axis_a_tvalid,
    input  wire logic        m_axis_a_tready,
    output logic [WIDTH-1:0] m_axis_b_tdata,
    output logic             m_axis_b_tvalid,
    input  wire logic        m_axis_b_tready
);
    logic done_a;  // output a already took the current input beat
    logic done_b;  // output b already took the current input beat

    assign m_axis_a_tdata  = s_axis_tdata;
    assign m_axis_b_tdata  = s_axis_tdata;
    assign m_axis_a_tvalid = s_axis_tvalid && !done_a;
    assign m_axis_b_tvalid = s_axis_tvalid && !done_b;
    assign s_axis_tready   = (done_a || m_axis_a_tready) && (done_b || m_axis_b_tready);

    always_ff @(posedge clk) begin
        if (rst) begin
            done_a <= 1'b0;
            done_b <= 1'b0;
        end else if (s_axis_tvalid && s_axis_tready) begin
            done_a <= 1'b0;
            done_b <= 1'b0;
        end else begin
            if (m_axis_a_tvalid && m_axis_a_tready) done_a <= 1'b1;
            if (m_axis_b_tvalid && m_axis_b_tready) done_b <= 1'b1;
        end
    end
endmodule
`default_nettype wire
