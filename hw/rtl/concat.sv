`default_nettype none
// concat: concatenation of two vectors along the feature dimension, beat-serial. For each
// vector it passes A_BEATS beats from input a, then B_BEATS beats from input b, then returns to
// a; a counter selects the input and the other input's ready is held low. Both inputs and the
// output carry WIDTH-bit beats of one element format. Registered through a skid buffer:
// latency one cycle, A_BEATS + B_BEATS cycles per vector.
module concat #(
    parameter int WIDTH   = 8,
    parameter int A_BEATS = 1,
    parameter int B_BEATS = 1
) (
    input  wire logic        clk,
    input  wire logic        rst,
    input  wire logic [WIDTH-1:0] s_axis_a_tdata,
    input  wire logic        s_axis_a_tvalid,
    output logic             s_axis_a_tready,
    input  wire logic [WIDTH-1:0] s_axis_b_tdata,
    input  wire logic        s_axis_b_tvalid,
    output logic             s_axis_b_tready,
    output logic [WIDTH-1:0] m_axis_tdata,
    output logic             m_axis_tvalid,
    input  wire logic        m_axis_tready
);
    localparam int TOTAL       = A_BEATS + B_BEATS;
    localparam int COUNT_WIDTH = TOTAL > 2 ? $clog2(TOTAL) : 1;

    generate
        if (A_BEATS < 1 || B_BEATS < 1) begin : g_bad_beats
            $error("concat: A_BEATS and B_BEATS must be at least 1");
        end
    endgenerate

    logic [COUNT_WIDTH-1:0] count;      // beat of the current output vector
    logic                   from_b;     // the current beat comes from input b
    logic [WIDTH-1:0]       sel_data;
    logic                   sel_valid;
    logic                   sel_ready;  // the skid buffer's ready: a register

    assign from_b          = count >= COUNT_WIDTH'(A_BEATS);
    assign sel_data        = from_b ? s_axis_b_tdata : s_axis_a_tdata;
    assign sel_valid       = from_b ? s_axis_b_tvalid : s_axis_a_tvalid;
    assign s_axis_a_tready = !from_b && sel_ready;
    assign s_axis_b_tready = from_b && sel_ready;

    always_ff @(posedge clk) begin
        if (rst) begin
            count <= '0;
        end else if (sel_valid && sel_ready) begin
            count <= count == COUNT_WIDTH'(TOTAL - 1) ? '0 : count + 1'b1;
        end
    end

    skid_buffer #(.DATA_WIDTH(WIDTH)) u_out (
        .clk, .rst,
        .s_axis_tdata(sel_data), .s_axis_tvalid(sel_valid), .s_axis_tready(sel_ready),
        .m_axis_tdata, .m_axis_tvalid, .m_axis_tready
    );
endmodule
`default_nettype wire
