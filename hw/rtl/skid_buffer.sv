`default_nettype none
// skid_buffer: a full-throughput stream register that also registers ready, so no
// combinational path runs from m_axis_tready to s_axis_tready. Latency one cycle.
module skid_buffer #(
    parameter int DATA_WIDTH = 8
) (
    input  wire logic             clk,
    input  wire logic             rst,
    input  wire logic [DATA_WIDTH-1:0] s_axis_tdata,
    input  wire logic             s_axis_tvalid,
    output logic                  s_axis_tready,
    output logic [DATA_WIDTH-1:0] m_axis_tdata,
    output logic                  m_axis_tvalid,
    input  wire logic             m_axis_tready
);
    logic [DATA_WIDTH-1:0] out_data;
    logic                  out_valid;
    logic [DATA_WIDTH-1:0] skid_data;  // holds the beat accepted while the output stalled
    logic                  skid_valid;

    assign s_axis_tready = !skid_valid;
    assign m_axis_tdata  = out_data;
    assign m_axis_tvalid = out_valid;

    always_ff @(posedge clk) begin
        if (rst) begin
            out_valid  <= 1'b0;
            skid_valid <= 1'b0;
        end else if (m_axis_tready || !out_valid) begin
            if (skid_valid) begin
                out_data   <= skid_data;
                out_valid  <= 1'b1;
                skid_valid <= 1'b0;
            end else begin
                out_data   <= s_axis_tdata;
                out_valid  <= s_axis_tvalid;
            end
        end else if (s_axis_tvalid && !skid_valid) begin
            skid_data  <= s_axis_tdata;
            skid_valid <= 1'b1;
        end
    end
endmodule
`default_nettype wire
