`default_nettype none
// leaky_relu: stream leaky ReLU with slope 2**-SHIFT on PAR elements per beat: negative
// codes are shifted right by SHIFT with ROUNDING (an exact cast), others pass. SIGNED says how
// codes are read; an unsigned stream has no negative code and passes unchanged.
// Format unchanged. Registered through a skid buffer. Latency one cycle.
module leaky_relu #(
    parameter int PAR      = 1,
    parameter int WIDTH    = 8,
    parameter int SHIFT    = 3,
    parameter int ROUNDING = 1,
    parameter bit SIGNED   = 1'b1
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
    logic [PAR*WIDTH-1:0] scaled_data;
    logic [PAR*WIDTH-1:0] leaky_data;

    for (genvar lane = 0; lane < PAR; lane++) begin : g_lane
        // x * 2**-SHIFT as a cast from frac SHIFT to frac 0: it never overflows
        fixed_cast_lane #(
            .IN_WIDTH(WIDTH), .IN_FRAC(SHIFT), .IN_SIGNED(1'b1),
            .OUT_WIDTH(WIDTH), .OUT_FRAC(0), .OUT_SIGNED(1'b1),
            .ROUNDING(ROUNDING), .OVERFLOW(0)
        ) u_scale (
            .data_in (s_axis_tdata[lane*WIDTH +: WIDTH]),
            .data_out(scaled_data[lane*WIDTH +: WIDTH])
        );
        assign leaky_data[lane*WIDTH +: WIDTH] = (SIGNED && s_axis_tdata[lane*WIDTH + WIDTH - 1])
            ? scaled_data[lane*WIDTH +: WIDTH] : s_axis_tdata[lane*WIDTH +: WIDTH];
    end

    skid_buffer #(.DATA_WIDTH(PAR * WIDTH)) u_out (
        .clk, .rst,
        .s_axis_tdata(leaky_data), .s_axis_tvalid, .s_axis_tready,
        .m_axis_tdata, .m_axis_tvalid, .m_axis_tready
    );
endmodule
`default_nettype wire
