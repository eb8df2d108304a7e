`default_nettype none
// concat_lockstep: concatenation of two vectors along the feature dimension when each arrives as
// one beat (both inputs fully parallel), the exact function of flow.nn.Concat.forward_codes. The
// output beat is one vector of A_ELEMENTS + B_ELEMENTS elements of WIDTH bits: a's elements in
// the low bits (element 0 least significant), then b's. A beat is taken from both inputs in the
// same cycle (each input's ready needs the other input's valid), as add.sv joins. Registered
// through a skid buffer: latency one cycle, one vector per cycle. (concat.sv is the beat-serial
// concatenation, for streams of several beats per vector.)
module concat_lockstep #(
    parameter int WIDTH      = 8,
    parameter int A_ELEMENTS = 1,
    parameter int B_ELEMENTS = 1
) (
    input  wire logic                               clk,
    input  wire logic                               rst,
    input  wire logic [A_ELEMENTS*WIDTH-1:0]             s_axis_a_tdata,
    input  wire logic                               s_axis_a_tvalid,
    output logic                                    s_axis_a_tready,
    input  wire logic [B_ELEMENTS*WIDTH-1:0]             s_axis_b_tdata,
    input  wire logic                               s_axis_b_tvalid,
    output logic                                    s_axis_b_tready,
    output logic [(A_ELEMENTS+B_ELEMENTS)*WIDTH-1:0] m_axis_tdata,
    output logic                                    m_axis_tvalid,
    input  wire logic                               m_axis_tready
);
    generate
        if (WIDTH < 1) begin : g_bad_width
            $error("concat_lockstep: WIDTH must be at least 1");
        end
        if (A_ELEMENTS < 1 || B_ELEMENTS < 1) begin : g_bad_elements
            $error("concat_lockstep: A_ELEMENTS and B_ELEMENTS must be at least 1");
        end
    endgenerate

    logic join_valid;
    logic join_ready;  // the skid buffer's ready: a register, no path from m_axis_tready

    assign join_valid      = s_axis_a_tvalid && s_axis_b_tvalid;
    assign s_axis_a_tready = s_axis_b_tvalid && join_ready;
    assign s_axis_b_tready = s_axis_a_tvalid && join_ready;

    skid_buffer #(.DATA_WIDTH((A_ELEMENTS + B_ELEMENTS) * WIDTH)) u_out (
        .clk, .rst,
        .s_axis_tdata({s_axis_b_tdata, s_axis_a_tdata}), .s_axis_tvalid(join_valid),
        .s_axis_tready(join_ready),
        .m_axis_tdata, .m_axis_tvalid, .m_axis_tready
    );
endmodule
`default_nettype wire
