`default_nettype none
// fixed_cast: stream cast of PAR elements per beat from one fixed-point format to another
// (fixed_cast_lane per element), registered through a skid buffer. Latency one cycle.
module fixed_cast #(
    parameter int PAR        = 1,
    parameter int IN_WIDTH   = 8,
    parameter int IN_FRAC    = 4,
    parameter bit IN_SIGNED  = 1'b1,
    parameter int OUT_WIDTH  = 8,
    parameter int OUT_FRAC   = 4,
    parameter bit OUT_SIGNED = 1'b1,
    parameter int ROUNDING   = 1,
    parameter int OVERFLOW   = 0
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
    logic [PAR*OUT_WIDTH-1:0] cast_data;

    for (genvar lane = 0; lane < PAR; lane++) begin : g_lane
        fixed_cast_lane #(
            .IN_WIDTH(IN_WIDTH), .IN_FRAC(IN_FRAC), .IN_SIGNED(IN_SIGNED),
            .OUT_WIDTH(OUT_WIDTH), .OUT_FRAC(OUT_FRAC), .OUT_SIGNED(OUT_SIGNED),
            .ROUNDING(ROUNDING), .OVERFLOW(OVERFLOW)
        ) u_cast (
            .data_in (s_axis_tdata[lane*IN_WIDTH +: IN_WIDTH]),
            .data_out(cast_data[lane*OUT_WIDTH +: OUT_WIDTH])
        );
    end

    skid_buffer #(.DATA_WIDTH(PAR * OUT_WIDTH)) u_out (
        .clk, .rst,
        .s_axis_tdata(cast_data), .s_axis_tvalid, .s_axis_tready,
        .m_axis_tdata, .m_axis_tvalid, .m_axis_tready
    );
endmodule
`default_nettype wire
