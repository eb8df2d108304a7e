`default_nettype none
// fifo: a first-word-fall-through stream FIFO of DEPTH beats of WIDTH bits. It balances
// branches of unequal latency that meet again. Ready depends only on the fill count (a
// register), so no combinational path runs from m_axis_tready to s_axis_tready. A beat written
// in one cycle can leave in the next: latency one cycle; one beat per cycle from DEPTH 2 on
// (DEPTH 1 refuses a beat while it holds one, so it moves one beat every two cycles).
module fifo #(
    parameter int WIDTH = 8,
    parameter int DEPTH = 4
) (
    input  wire logic        clk,
    input  wire logic        rst,
    input  wire logic [WIDTH-1:0] s_axis_tdata,
    input  wire logic        s_axis_tvalid,
    output logic             s_axis_tready,
    output logic [WIDTH-1:0] m_axis_tdata,
    output logic             m_axis_tvalid,
    input  wire logic        m_axis_tready
);
    localparam int PTR_WIDTH   = DEPTH > 1 ? $clog2(DEPTH) : 1;
    localparam int COUNT_WIDTH = $clog2(DEPTH + 1);

    generate
        if (DEPTH < 1) begin : g_bad_depth
            $error("fifo: DEPTH must be at least 1");
        end
    endgenerate

    logic [WIDTH-1:0]       memory [DEPTH];
    logic [PTR_WIDTH-1:0]   write_ptr, read_ptr;
    logic [COUNT_WIDTH-1:0] count;
    logic                   push, pop;

    assign s_axis_tready = count < COUNT_WIDTH'(DEPTH);
    assign m_axis_tvalid = count != '0;
    assign m_axis_tdata  = memory[read_ptr];
    assign push = s_axis_tvalid && s_axis_tready;
    assign pop  = m_axis_tvalid && m_axis_tready;

    logic [PTR_WIDTH-1:0] write_next, read_next;
    assign write_next = write_ptr == PTR_WIDTH'(DEPTH - 1) ? '0 : write_ptr + 1'b1;
    assign read_next  = read_ptr == PTR_WIDTH'(DEPTH - 1) ? '0 : read_ptr + 1'b1;

    always_ff @(posedge clk) begin
        if (push) begin
            memory[write_ptr] <= s_axis_tdata;
        end
        if (rst) begin
            write_ptr <= '0;
            read_ptr  <= '0;
            count     <= '0;
        end else begin
            if (push) write_ptr <= write_next;
            if (pop) read_ptr <= read_next;
            if (push && !pop) count <= count + 1'b1;
            else if (pop && !push) count <= count - 1'b1;
        end
    end
endmodule
`default_nettype wire
