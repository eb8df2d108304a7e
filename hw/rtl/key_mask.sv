`default_nettype none
// key_mask: BERT's attention key mask on a scores stream. Per sample the scores come as ROWS rows
// (one a query token) of SEQ elements (one a key token), PAR elements per beat (SEQ % PAR == 0);
// the mask comes as SEQ beats of one bit (1 = a real token, 0 = padding). Every element of a
// masked column is replaced by the scores format's lowest code (signed: -2^(WIDTH-1), unsigned:
// 0), every other passes unchanged: the exact function of QuantSoftmax's input quantization of
// scores + mask * finfo.min. The mask is buffered twice: the next sample's mask is taken while
// the current sample's scores stream, so back-to-back samples flow at one beat per cycle. A scores
// beat leaves through a skid buffer: latency one cycle once its sample's mask is complete.
module key_mask #(
    parameter int PAR    = 1,
    parameter int WIDTH  = 8,
    parameter bit SIGNED = 1'b1,
    parameter int SEQ    = 4,
    parameter int ROWS   = 4
) (
    input  wire logic                 clk,
    input  wire logic                 rst,
    input  wire logic [PAR*WIDTH-1:0] s_axis_tdata,
    input  wire logic                 s_axis_tvalid,
    output logic                      s_axis_tready,
    input  wire logic [0:0]           s_axis_mask_tdata,
    input  wire logic                 s_axis_mask_tvalid,
    output logic                      s_axis_mask_tready,
    output logic [PAR*WIDTH-1:0]      m_axis_tdata,
    output logic                      m_axis_tvalid,
    input  wire logic                 m_axis_tready
);
    localparam int BEATS  = SEQ / PAR;  // beats per row
    localparam int FILL_W = $clog2(SEQ + 1);
    localparam int BEAT_W = $clog2(BEATS + 1);
    localparam int ROW_W  = $clog2(ROWS + 1);
    localparam logic [WIDTH-1:0] LOWEST = SIGNED ? {1'b1, {(WIDTH - 1){1'b0}}} : '0;

    generate
        if (PAR < 1 || SEQ < 1 || ROWS < 1) begin : g_bad_size
            $error("key_mask: PAR, SEQ and ROWS must be at least 1");
        end
        if (SEQ % PAR != 0) begin : g_bad_par
            $error("key_mask: PAR must divide SEQ");
        end
    endgenerate

    logic [SEQ-1:0]    fill_bits;   // the mask being received
    logic [FILL_W-1:0] fill_count;
    logic              fill_full;   // a whole sample's mask waits in fill_bits
    logic [SEQ-1:0]    act_bits;    // the mask of the sample whose scores stream now
    logic              act_valid;
    logic [BEAT_W-1:0] beat;        // beat within the row
    logic [ROW_W-1:0]  row;
    logic              join_ready;  // the skid buffer's ready
    logic              take;
    logic              last;
    logic              load;        // fill_bits moves to act_bits this cycle
    logic [PAR-1:0]    beat_keep;
    logic [PAR*WIDTH-1:0] masked;

    assign s_axis_mask_tready = !fill_full || load;  // the buffer empties this cycle
    assign s_axis_tready      = act_valid && join_ready;
    assign take = s_axis_tvalid && act_valid && join_ready;
    assign last = take && beat == BEAT_W'(BEATS - 1) && row == ROW_W'(ROWS - 1);
    assign load = fill_full && (!act_valid || last);

    always_ff @(posedge clk) begin
        if (rst) begin
            fill_count <= '0;
            fill_full  <= 1'b0;
            act_valid  <= 1'b0;
            beat       <= '0;
            row        <= '0;
        end else begin
            if (load) begin
                act_bits  <= fill_bits;  // read before this cycle's mask write
                act_valid <= 1'b1;
                fill_full <= 1'b0;
            end else if (last) begin
                act_valid <= 1'b0;
            end
            // after the load: a mask beat completing a sample in the cycle of a load sets fill_full again
            if (s_axis_mask_tvalid && s_axis_mask_tready) begin
                for (int i = 0; i < SEQ; i++) begin
                    if (fill_count == FILL_W'(i)) fill_bits[i] <= s_axis_mask_tdata[0];
                end
                if (fill_count == FILL_W'(SEQ - 1)) begin
                    fill_count <= '0;
                    fill_full  <= 1'b1;
                end else begin
                    fill_count <= fill_count + 1'b1;
                end
            end
            if (take) begin
                if (beat == BEAT_W'(BEATS - 1)) begin
                    beat <= '0;
                    row  <= row == ROW_W'(ROWS - 1) ? '0 : row + 1'b1;
                end else begin
                    beat <= beat + 1'b1;
                end
            end
        end
    end

    always_comb begin  // the mask bits of this beat's columns
        beat_keep = '0;
        for (int b = 0; b < BEATS; b++) begin
            if (beat == BEAT_W'(b)) beat_keep = act_bits[b*PAR +: PAR];
        end
    end

    for (genvar lane = 0; lane < PAR; lane++) begin : g_lane
        assign masked[lane*WIDTH +: WIDTH] = beat_keep[lane] ? s_axis_tdata[lane*WIDTH +: WIDTH] : LOWEST;
    end

    skid_buffer #(.DATA_WIDTH(PAR * WIDTH)) u_out (
        .clk, .rst,
        .s_axis_tdata(masked), .s_axis_tvalid(s_axis_tvalid && act_valid), .s_axis_tready(join_ready),
        .m_axis_tdata, .m_axis_tvalid, .m_axis_tready
    );
endmodule
`default_nettype wire
