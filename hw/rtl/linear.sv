`default_nettype none
// linear: streaming fully connected layer y = x W^T + b with constant weights and bias.
//
// Input vectors of IN_FEATURES elements arrive as IN_FEATURES/IN_PAR beats; output vectors
// of OUT_FEATURES elements leave as OUT_FEATURES/OUT_PAR beats. Each input beat is held
// for OUT_FEATURES/OUT_PAR cycles while IN_PAR x OUT_PAR multipliers update one group of
// accumulators, so the initiation interval is (IN_FEATURES/IN_PAR)*(OUT_FEATURES/OUT_PAR)
// cycles: one vector per cycle when fully parallel, one multiply per cycle when minimal.
// Finished sums move to a result buffer, so the next vector accumulates while this one
// leaves; each output beat is cast (ROUNDING, OVERFLOW) from frac IN_FRAC + W_FRAC.
//
// Weights (W_SIGNED: two's complement, else unsigned). A vector takes STEPS =
// (IN_FEATURES/IN_PAR)*(OUT_FEATURES/OUT_PAR) steps, step s = beat*OUT_GROUPS + group updating
// output group `group` from input beat `beat`; the IN_PAR*OUT_PAR lanes of a step use the weights
// (o, i) = (group*OUT_PAR + lo, beat*IN_PAR + li), lane (lo, li) at bits
// [(lo*IN_PAR + li)*W_WIDTH +: W_WIDTH] of the step's weight word.
// - Fully parallel (STEPS = 1): WEIGHTS is that one word, i.e. weight (o, i) at
//   [(o*IN_FEATURES + i)*W_WIDTH +: W_WIDTH]; constants in the datapath.
// - Folded (STEPS > 1): a ROM of STEPS words, word s on line s of the $readmemh file WEIGHTS_FILE
//   (hex, one word a line); each cycle reads one word into a register, addressed one step ahead
//   (synthesis maps a deep enough ROM to block RAM).
//   Synthesis reads WEIGHTS_FILE as written (Yosys: from its working directory, else next to
//   this file); a simulation resolves a relative name against +flow_rtl_dir=<folder> when given
//   (flow's Verilator runs pass the emitted rtl folder), else its working directory.
// BIAS packs bias o, already aligned to frac IN_FRAC + W_FRAC, at [o*ACC_WIDTH +: ACC_WIDTH].
// ACC_WIDTH must hold every final sum (QuantLinear.accumulator_width: the interval of the actual
// weights over the input range); running sums and products wrap modulo 2**ACC_WIDTH, which is exact
// because the final sum fits.
module linear #(
    parameter int IN_FEATURES  = 4,
    parameter int OUT_FEATURES = 4,
    parameter int IN_PAR       = 4,
    parameter int OUT_PAR      = 4,
    parameter int IN_WIDTH     = 8,
    parameter int IN_FRAC      = 4,
    parameter bit IN_SIGNED    = 1'b1,
    parameter int W_WIDTH      = 8,
    parameter int W_FRAC       = 4,
    parameter bit W_SIGNED     = 1'b1,
    parameter int ACC_WIDTH    = 20,
    parameter int OUT_WIDTH    = 8,
    parameter int OUT_FRAC     = 4,
    parameter bit OUT_SIGNED   = 1'b1,
    parameter int ROUNDING     = 1,
    parameter int OVERFLOW     = 0,
    // defaults 0, not '0: a '0 wider than 8,192 bits is past Verilator's replication limit
    parameter logic [OUT_PAR*IN_PAR*W_WIDTH-1:0] WEIGHTS      = 0,   // fully parallel only
    parameter                                    WEIGHTS_FILE = "",  // folded only: the ROM's hex file
    parameter logic [OUT_FEATURES*ACC_WIDTH-1:0] BIAS         = 0
) (
    input  wire logic                    clk,
    input  wire logic                    rst,
    input  wire logic [IN_PAR*IN_WIDTH-1:0]   s_axis_tdata,
    input  wire logic                    s_axis_tvalid,
    output logic                         s_axis_tready,
    output logic [OUT_PAR*OUT_WIDTH-1:0] m_axis_tdata,
    output logic                         m_axis_tvalid,
    input  wire logic                    m_axis_tready
);
    localparam int IN_BEATS   = IN_FEATURES / IN_PAR;    // beats per input vector
    localparam int OUT_GROUPS = OUT_FEATURES / OUT_PAR;  // beats per output vector
    localparam int BEAT_BITS  = IN_BEATS > 1 ? $clog2(IN_BEATS) : 1;
    localparam int GROUP_BITS = OUT_GROUPS > 1 ? $clog2(OUT_GROUPS) : 1;
    localparam int STEPS      = IN_BEATS * OUT_GROUPS;       // weight words per vector
    localparam int STEP_BITS  = STEPS > 1 ? $clog2(STEPS) : 1;
    localparam int LANE_BITS  = OUT_PAR * IN_PAR * W_WIDTH;  // one weight word
    localparam int X_WIDTH    = IN_WIDTH + (IN_SIGNED ? 0 : 1);  // element as a signed number
    localparam int WS_WIDTH   = W_WIDTH + (W_SIGNED ? 0 : 1);    // weight as a signed number
    localparam int P_WIDTH    = X_WIDTH + WS_WIDTH;              // exact product width

    generate
        if (IN_FEATURES % IN_PAR != 0) begin : g_bad_in_par
            $error("linear: IN_PAR must divide IN_FEATURES");
        end
        if (OUT_FEATURES % OUT_PAR != 0) begin : g_bad_out_par
            $error("linear: OUT_PAR must divide OUT_FEATURES");
        end
        if (ACC_WIDTH < 2) begin : g_bad_acc
            $error("linear: ACC_WIDTH must be at least 2");
        end
        if (STEPS > 1 && WEIGHTS_FILE == "") begin : g_bad_weights
            $error("linear: a folded layer reads its weights from WEIGHTS_FILE; none given");
        end
    endgenerate

    // ---- input beat, held while every output group uses it ----
    logic [IN_PAR*IN_WIDTH-1:0] x_data;
    logic                       x_valid;
    logic [BEAT_BITS-1:0]       beat;   // which input beat of the vector x_data is
    logic [GROUP_BITS-1:0]      group;  // which output group this cycle updates
    logic [STEP_BITS-1:0]       step;   // beat*OUT_GROUPS + group: the weight word of this cycle

    // ---- result buffer, drained one output group per beat ----
    logic [OUT_FEATURES*ACC_WIDTH-1:0] acc;
    logic [OUT_FEATURES*ACC_WIDTH-1:0] result;
    logic                              result_valid;
    logic [GROUP_BITS-1:0]             out_group;
    logic                              out_ready;  // registered ready of the output skid buffer

    logic last_group, last_update, result_free, fire;
    logic [OUT_PAR*ACC_WIDTH-1:0] sums;

    assign last_group  = group == GROUP_BITS'(OUT_GROUPS - 1);
    assign last_update = last_group && beat == BEAT_BITS'(IN_BEATS - 1);
    assign result_free = !result_valid || (out_ready && out_group == GROUP_BITS'(OUT_GROUPS - 1));
    assign fire        = x_valid && (!last_update || result_free);
    assign s_axis_tready = !x_valid || (fire && last_group);

    // Weights of this step: fully parallel, the constants themselves; folded, one ROM word read on
    // the clock edge, as block RAM reads: the word of the step the state moves to at this edge
    // (reset: step 0), so the register holds rom[step] whenever step is current and the cycle
    // behaviour is that of a combinational lookup. Each output lane o sees its biases by group.
    logic [LANE_BITS-1:0]         lane_weights;
    logic [OUT_PAR*ACC_WIDTH-1:0] lane_bias;
    generate
        if (STEPS == 1) begin : g_weights_direct
            assign lane_weights = WEIGHTS;
        end else if (WEIGHTS_FILE != "") begin : g_weights_rom  // else g_bad_weights stops elaboration
            logic [LANE_BITS-1:0] rom [STEPS];
            logic [STEP_BITS-1:0] next_step;
            assign next_step = rst || (fire && last_update) ? '0 : fire ? step + 1'b1 : step;
            always_ff @(posedge clk) begin
                lane_weights <= rom[next_step];
            end
            initial begin
`ifdef SYNTHESIS
                $readmemh(WEIGHTS_FILE, rom);
`else
                string dir, path;
                integer fd;
                path = $sformatf("%0s", WEIGHTS_FILE);
                if ($value$plusargs("flow_rtl_dir=%s", dir) && path.substr(0, 0) != "/") begin
                    path = {dir, "/", path};
                end
                fd = $fopen(path, "r");
                if (fd == 0) begin
                    $fatal(1, "linear: cannot open WEIGHTS_FILE %s (relative to +flow_rtl_dir=, else the %s)",
                           path, "working directory");
                end
                $fclose(fd);
                $readmemh(path, rom);
`endif
            end
        end
        if (OUT_GROUPS == 1) begin : g_bias_direct
            assign lane_bias = BIAS;
        end else begin : g_bias_rom
            always_comb begin
                lane_bias = '0;
                for (int g = 0; g < OUT_GROUPS; g++) begin
                    if (group == GROUP_BITS'(g)) begin
                        lane_bias = BIAS[g*OUT_PAR*ACC_WIDTH +: OUT_PAR*ACC_WIDTH];
                    end
                end
            end
        end
    endgenerate

    // The running sums of the group being updated and the finished sums of the group being
    // sent: explicit muxes over OUT_GROUPS slices (a variable part-select would synthesize
    // to a barrel shifter across the whole buffer).
    localparam int GROUP_SUM_BITS = OUT_PAR * ACC_WIDTH;
    logic [GROUP_SUM_BITS-1:0] acc_group;
    logic [GROUP_SUM_BITS-1:0] result_group;
    always_comb begin
        acc_group    = '0;
        result_group = '0;
        for (int g = 0; g < OUT_GROUPS; g++) begin
            if (group == GROUP_BITS'(g)) begin
                acc_group = acc[g*GROUP_SUM_BITS +: GROUP_SUM_BITS];
            end
            if (out_group == GROUP_BITS'(g)) begin
                result_group = result[g*GROUP_SUM_BITS +: GROUP_SUM_BITS];
            end
        end
    end

    // sums of the group being updated: bias or running sum, plus IN_PAR products each
    always_comb begin
        for (int o = 0; o < OUT_PAR; o++) begin
            logic signed [ACC_WIDTH-1:0] sum;
            sum = beat == '0 ? lane_bias[o*ACC_WIDTH +: ACC_WIDTH]
                             : acc_group[o*ACC_WIDTH +: ACC_WIDTH];
            for (int i = 0; i < IN_PAR; i++) begin
                logic signed [X_WIDTH-1:0] x;
                logic signed [WS_WIDTH-1:0] w;
                logic signed [P_WIDTH-1:0] product;
                x = X_WIDTH'({IN_SIGNED & x_data[i*IN_WIDTH + IN_WIDTH - 1], x_data[i*IN_WIDTH +: IN_WIDTH]});
                w = WS_WIDTH'({W_SIGNED & lane_weights[(o*IN_PAR + i)*W_WIDTH + W_WIDTH - 1],
                               lane_weights[(o*IN_PAR + i)*W_WIDTH +: W_WIDTH]});
                product = P_WIDTH'(x) * P_WIDTH'(w);
                sum = sum + ACC_WIDTH'(product);
            end
            sums[o*ACC_WIDTH +: ACC_WIDTH] = sum;
        end
    end

    always_ff @(posedge clk) begin
        if (rst) begin
            x_valid      <= 1'b0;
            beat         <= '0;
            group        <= '0;
            step         <= '0;
            result_valid <= 1'b0;
            out_group    <= '0;
        end else begin
            if (fire) begin
                for (int g = 0; g < OUT_GROUPS; g++) begin
                    if (group == GROUP_BITS'(g)) begin
                        acc[g*GROUP_SUM_BITS +: GROUP_SUM_BITS] <= sums;
                    end
                end
                group <= last_group ? '0 : group + 1'b1;
                step  <= last_update ? '0 : step + 1'b1;
                if (last_group) begin
                    beat <= last_update ? '0 : beat + 1'b1;
                end
            end
            if (s_axis_tvalid && s_axis_tready) begin
                x_data  <= s_axis_tdata;
                x_valid <= 1'b1;
            end else if (fire && last_group) begin
                x_valid <= 1'b0;
            end
            // drain the result buffer, then refill it with the vector just finished
            if (result_valid && out_ready) begin
                out_group <= out_group == GROUP_BITS'(OUT_GROUPS - 1) ? '0 : out_group + 1'b1;
                if (out_group == GROUP_BITS'(OUT_GROUPS - 1)) begin
                    result_valid <= 1'b0;
                end
            end
            if (fire && last_update) begin
                result <= acc;
                result[(OUT_FEATURES-OUT_PAR)*ACC_WIDTH +: OUT_PAR*ACC_WIDTH] <= sums;
                result_valid <= 1'b1;
            end
        end
    end

    // ---- output: cast the current group, register it through a skid buffer ----
    logic [OUT_PAR*OUT_WIDTH-1:0] out_data;
    for (genvar o = 0; o < OUT_PAR; o++) begin : g_out
        fixed_cast_lane #(
            .IN_WIDTH(ACC_WIDTH), .IN_FRAC(IN_FRAC + W_FRAC), .IN_SIGNED(1'b1),
            .OUT_WIDTH(OUT_WIDTH), .OUT_FRAC(OUT_FRAC), .OUT_SIGNED(OUT_SIGNED),
            .ROUNDING(ROUNDING), .OVERFLOW(OVERFLOW)
        ) u_cast (
            .data_in (result_group[o*ACC_WIDTH +: ACC_WIDTH]),
            .data_out(out_data[o*OUT_WIDTH +: OUT_WIDTH])
        );
    end

    skid_buffer #(.DATA_WIDTH(OUT_PAR * OUT_WIDTH)) u_out (
        .clk, .rst,
        .s_axis_tdata(out_data), .s_axis_tvalid(result_valid), .s_axis_tready(out_ready),
        .m_axis_tdata, .m_axis_tvalid, .m_axis_tready
    );
endmodule
`default_nettype wire
