`default_nettype none
// absolute: stream absolute value |code| on PAR elements per beat, format unchanged, saturating:
// the most negative code, whose magnitude the format cannot hold, becomes the largest code.
// SIGNED says how the stream's codes are read; unsigned (SIGNED=0): no code is negative, every
// code passes. Registered through a skid buffer. Latency one cycle.
module absolute #(
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
    localparam logic [WIDTH-1:0] MOST_NEGATIVE = WIDTH'(1) << (WIDTH - 1);
    localparam logic [WIDTH-1:0] LARGEST = MOST_NEGATIVE - WIDTH'(1);

    logic [PAR*WIDTH-1:0] abs_data;

    always_comb begin
        for (int lane = 0; lane < PAR; lane++) begin
            if (!(SIGNED && s_axis_tdata[lane*WIDTH + WIDTH - 1]))
                abs_data[lane*WIDTH +: WIDTH] = s_axis_tdata[lane*WIDTH +: WIDTH];
            else if (s_axis_tdata[lane*WIDTH +: WIDTH] == MOST_NEGATIVE)
                abs_data[lane*WIDTH +: WIDTH] = LARGEST;
            else
                abs_data[lane*WIDTH +: WIDTH] = -s_axis_tdata[lane*WIDTH +: WIDTH];
        end
    end

    skid_buffer #(.DATA_WIDTH(PAR * WIDTH)) u_out (
        .clk, .rst,
        .s_axis_tdata(abs_data), .s_axis_tvalid, .s_axis_tready,
        .m_axis_tdata, .m_axis_tvalid, .m_axis_tready
    );
endmodule
`default_nettype wire
