`default_nettype none
// relu: stream ReLU, max(0, code) on PAR elements per beat, format unchanged. SIGNED says
// how the stream's codes are read: two's complement (negative codes become 0) or unsigned
// (no code is negative, so every code passes). Registered through a skid buffer. Latency one cycle.
module relu #(
    parameter int PAR    = 1,
    parameter int WIDTH  = 8,
    parameter bit SIGNED = 1'b1
) (
    input  wire logic            clk,
    input  wire logic            rst,
    input  wire logic [PAR*WIDTH-1:0] s_axis_tdata,
    input  wire logic            s_axis_tvalid,
    output logic                 s_axis_tready,
    output logic [PAR*WIDTH-1:0] m_axis_tdata,
    output logic                 m_axis_tvalid,
    input  wire logic            m_axis_tready
);
    logic [PAR*WIDTH-1:0] relu_data;

    always_comb begin
        for (int lane = 0; lane < PAR; lane++) begin
            relu_data[lane*WIDTH +: WIDTH] = (SIGNED && s_axis_tdata[lane*WIDTH + WIDTH - 1])
                ? '0 : s_axis_tdata[lane*WIDTH +: WIDTH];
        end
    end

    skid_buffer #(.DATA_WIDTH(PAR * WIDTH)) u_out (
        .clk, .rst,
        .s_axis_tdata(relu_data), .s_axis_tvalid, .s_axis_tready,
        .m_axis_tdata, .m_axis_tvalid, .m_axis_tready
    );
endmodule
`default_nettype wire
