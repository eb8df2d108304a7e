`default_nettype none
// select_token: of each sample's TOKENS tokens (BEATS beats each, WIDTH bits a beat), passes the
// beats of token INDEX and drops the others (h[:, INDEX] of a sequence design: BERT's pooler reads
// token 0). A dropped beat is taken at once; a kept beat leaves through a skid buffer, so it is
// offered one cycle after it was taken and a beat is taken every cycle.
module select_token #(
    parameter int WIDTH  = 8,
    parameter int BEATS  = 1,
    parameter int TOKENS = 2,
    parameter int INDEX  = 0
) (
    input  wire logic             clk,
    input  wire logic             rst,
    input  wire logic [WIDTH-1:0] s_axis_tdata,
    input  wire logic             s_axis_tvalid,
    output logic                  s_axis_tready,
    output logic [WIDTH-1:0]      m_axis_tdata,
    output logic                  m_axis_tvalid,
    input  wire logic             m_axis_tready
);
    localparam int TOTAL  = BEATS * TOKENS;              // beats a sample
    localparam int FIRST  = INDEX * BEATS;               // its kept beats: [FIRST, FIRST + BEATS)
    localparam int BEAT_W = $clog2(TOTAL + 1);            // room for TOTAL itself

    generate
        if (BEATS < 1 || TOKENS < 1) begin : g_bad_shape
            $error("select_token: BEATS and TOKENS must be at least 1");
        end
        if (INDEX < 0 || INDEX >= TOKENS) begin : g_bad_index
            $error("select_token: INDEX must name one of the TOKENS tokens");
        end
    endgenerate

    logic [BEAT_W-1:0] beat;  // the beat of the sample that the input offers
    logic              keep;
    logic              out_ready;

    assign keep          = BEAT_W'(beat - BEAT_W'(FIRST)) < BEAT_W'(BEATS);  // modulo 2**BEAT_W: below FIRST wraps high
    assign s_axis_tready = keep ? out_ready : 1'b1;

    always_ff @(posedge clk) begin
        if (rst) begin
            beat <= '0;
        end else if (s_axis_tvalid && s_axis_tready) begin
            beat <= beat == BEAT_W'(TOTAL - 1) ? '0 : beat + BEAT_W'(1);
        end
    end

    skid_buffer #(.DATA_WIDTH(WIDTH)) u_out (
        .clk, .rst,
        .s_axis_tdata, .s_axis_tvalid(s_axis_tvalid && keep), .s_axis_tready(out_ready),
        .m_axis_tdata, .m_axis_tvalid, .m_axis_tready
    );
endmodule
`default_nettype wire
