`default_nettype none
// matmul: C = A B of two activation streams, as flow.nn.QuantMatmul.forward_codes (attention's
// Q·Kᵀ and A·V). One product is INNER x COLS elements of B on s_axis_b (buffered whole, B_PAR per
// beat: B row-major, or Bᵀ row-major when B_TRANSPOSED, as the rows of K arrive for Q·Kᵀ), then
// ROWS rows of INNER elements of A on s_axis_a (A_PAR per beat), each leaving as a row of COLS
// elements of C on m_axis (OUT_PAR per beat).
// B is held in A_PAR x OUT_PAR banks, one per product lane, each a simple dual-port memory of
// STEPS x GROUPS words (block RAM when deep): element (k, n) lives in bank (k % A_PAR, n % OUT_PAR)
// at word (k / A_PAR) GROUPS + n / OUT_PAR, so a step reads one word of every bank, registered,
// its address issued a cycle ahead. A beat of B writes at most one element per bank: B_PAR must
// not exceed A_PAR (B transposed) or OUT_PAR (B row-major) and must divide B's stream rows.
// Each row of A is buffered, then every group of OUT_PAR outputs accumulates A_PAR x OUT_PAR
// products per cycle over STEPS = INNER/A_PAR cycles in exact ACC_WIDTH-bit sums (wrapping
// arithmetic is exact because the final sums fit), which leave through one cast from IN_FRAC
// (the products' frac plus the scale's shift) to the output format.
// Cycles per product: B_BEATS + ROWS (A_BEATS + GROUPS (STEPS + 1)); latency from the first B beat
// to the first output beat B_BEATS + A_BEATS + STEPS (flow.circuits.components.matmul_cycles).
module matmul #(
    parameter int ROWS         = 4,
    parameter int INNER        = 4,
    parameter int COLS         = 4,
    parameter int A_PAR        = 1,
    parameter int B_PAR        = 1,
    parameter int OUT_PAR      = 1,
    parameter bit B_TRANSPOSED = 1'b0,
    parameter int A_WIDTH      = 8,
    parameter bit A_SIGNED     = 1'b1,
    parameter int B_WIDTH      = 8,
    parameter bit B_SIGNED     = 1'b1,
    parameter int ACC_WIDTH    = 20,
    parameter int IN_FRAC      = 8,
    parameter int OUT_WIDTH    = 8,
    parameter int OUT_FRAC     = 4,
    parameter bit OUT_SIGNED   = 1'b1,
    parameter int ROUNDING     = 1,
    parameter int OVERFLOW     = 0
) (
    input  wire logic                       clk,
    input  wire logic                       rst,
    input  wire logic [A_PAR*A_WIDTH-1:0]   s_axis_a_tdata,
    input  wire logic                       s_axis_a_tvalid,
    output logic                            s_axis_a_tready,
    input  wire logic [B_PAR*B_WIDTH-1:0]   s_axis_b_tdata,
    input  wire logic                       s_axis_b_tvalid,
    output logic                            s_axis_b_tready,
    output logic      [OUT_PAR*OUT_WIDTH-1:0] m_axis_tdata,
    output logic                            m_axis_tvalid,
    input  wire logic                       m_axis_tready
);
    localparam int B_ELEMENTS = INNER * COLS;
    localparam int B_BEATS    = B_ELEMENTS / B_PAR;
    localparam int A_BEATS    = INNER / A_PAR;
    localparam int STEPS      = INNER / A_PAR;
    localparam int GROUPS     = COLS / OUT_PAR;
    localparam int BB_W       = B_BEATS > 1 ? $clog2(B_BEATS) : 1;
    localparam int AB_W       = A_BEATS > 1 ? $clog2(A_BEATS) : 1;
    localparam int ROW_W      = ROWS > 1 ? $clog2(ROWS) : 1;
    localparam int GROUP_W    = GROUPS > 1 ? $clog2(GROUPS) : 1;
    localparam int STEP_W     = STEPS > 1 ? $clog2(STEPS) : 1;
    localparam int B_ROWS     = B_TRANSPOSED ? COLS : INNER;        // rows of the B stream
    localparam int B_ROW_LEN  = B_TRANSPOSED ? INNER : COLS;
    localparam int BR_W       = B_ROWS > 1 ? $clog2(B_ROWS) : 1;
    localparam int BC_W       = $clog2(B_ROW_LEN + 1);
    localparam int DEPTH      = STEPS * GROUPS;                      // words of each bank
    localparam int D_ADDR_W   = DEPTH > 1 ? $clog2(DEPTH) : 1;
    localparam int A_ADDR_W   = INNER > 1 ? $clog2(INNER) : 1;

    generate
        if (ACC_WIDTH <= A_WIDTH || ACC_WIDTH <= B_WIDTH) begin : g_bad_acc
            $error("matmul: ACC_WIDTH must exceed A_WIDTH and B_WIDTH (QuantMatmul.accumulator_width)");
        end
        if (A_PAR < 1 || INNER % A_PAR != 0) begin : g_bad_a_par
            $error("matmul: A_PAR must divide INNER (a row of A); pick an A_PAR that divides it");
        end
        if (B_PAR < 1 || B_ROW_LEN % B_PAR != 0 || B_PAR > (B_TRANSPOSED ? A_PAR : OUT_PAR)) begin : g_bad_b_par
            $error("matmul: B_PAR must divide B's stream rows and not exceed A_PAR (B transposed) or OUT_PAR");
        end
        if (OUT_PAR < 1 || COLS % OUT_PAR != 0) begin : g_bad_out_par
            $error("matmul: OUT_PAR must divide COLS (a row of C); pick an OUT_PAR that divides it");
        end
    endgenerate

    typedef enum logic [1:0] {LOAD_B, LOAD_A, MAC, EMIT} state_t;
    state_t state;

    logic [A_WIDTH-1:0]   a_row [INNER];
    logic [BB_W-1:0]      b_beat;
    logic [BR_W-1:0]      b_row;                                   // the B stream's row and first column
    logic [BC_W-1:0]      b_col;
    logic [AB_W-1:0]      a_beat;
    logic [ROW_W-1:0]     row;
    logic [GROUP_W-1:0]   group;
    logic [STEP_W-1:0]    step;
    logic [OUT_PAR*ACC_WIDTH-1:0] acc;

    logic last_b_beat, last_a_beat, last_row, last_group, last_step;
    assign last_b_beat = b_beat == BB_W'(B_BEATS - 1);
    assign last_a_beat = a_beat == AB_W'(A_BEATS - 1);
    assign last_row    = row == ROW_W'(ROWS - 1);
    assign last_group  = group == GROUP_W'(GROUPS - 1);
    assign last_step   = step == STEP_W'(STEPS - 1);

    assign s_axis_b_tready = state == LOAD_B;
    assign s_axis_a_tready = state == LOAD_A;
    assign m_axis_tvalid   = state == EMIT;

    // ---- one step of the group: A_PAR x OUT_PAR products added to each lane's sum ----
    function automatic logic [ACC_WIDTH-1:0] a_ext(input logic [A_WIDTH-1:0] x);
        a_ext = {{(ACC_WIDTH - A_WIDTH){A_SIGNED & x[A_WIDTH-1]}}, x};
    endfunction

    function automatic logic [ACC_WIDTH-1:0] b_ext(input logic [B_WIDTH-1:0] x);
        b_ext = {{(ACC_WIDTH - B_WIDTH){B_SIGNED & x[B_WIDTH-1]}}, x};
    endfunction

    // ---- the banks: a beat of B written, one word of every bank read a cycle ahead ----
    logic [GROUP_W-1:0] read_group;  // the step and group whose words the next cycle uses
    logic [STEP_W-1:0]  read_step;
    always_comb begin
        read_step  = '0;
        read_group = '0;
        if (state == MAC && !last_step) begin
            read_step  = step + STEP_W'(1);
            read_group = group;
        end else if (state == EMIT && !last_group) begin
            read_group = group + GROUP_W'(1);
        end
    end

    logic [B_WIDTH-1:0] b_word [A_PAR][OUT_PAR];
    for (genvar i = 0; i < A_PAR; i++) begin : g_bank_i
        for (genvar o = 0; o < OUT_PAR; o++) begin : g_bank_o
            logic [B_WIDTH-1:0]  bank [DEPTH];
            logic                write;
            logic [D_ADDR_W-1:0] write_address;
            logic [B_WIDTH-1:0]  write_data;
            always_comb begin
                write         = 1'b0;
                write_address = '0;
                write_data    = '0;
                for (int lane = 0; lane < B_PAR; lane++) begin
                    if (B_TRANSPOSED ? ((int'(b_col) + lane) % A_PAR == i && int'(b_row) % OUT_PAR == o)
                                     : (int'(b_row) % A_PAR == i && (int'(b_col) + lane) % OUT_PAR == o)) begin
                        write         = state == LOAD_B && s_axis_b_tvalid;
                        write_address = B_TRANSPOSED
                            ? D_ADDR_W'((int'(b_col) + lane) / A_PAR * GROUPS + int'(b_row) / OUT_PAR)
                            : D_ADDR_W'(int'(b_row) / A_PAR * GROUPS + (int'(b_col) + lane) / OUT_PAR);
                        write_data    = s_axis_b_tdata[lane*B_WIDTH +: B_WIDTH];
                    end
                end
            end
            always_ff @(posedge clk) begin
                if (write) bank[write_address] <= write_data;
                b_word[i][o] <= bank[D_ADDR_W'(int'(read_step) * GROUPS + int'(read_group))];
            end
        end
    end

    // ---- one step of the group: A_PAR x OUT_PAR products added to each lane's sum ----
    logic [OUT_PAR*ACC_WIDTH-1:0] next_acc;
    always_comb begin
        for (int o = 0; o < OUT_PAR; o++) begin
            next_acc[o*ACC_WIDTH +: ACC_WIDTH] = step == '0 ? '0 : acc[o*ACC_WIDTH +: ACC_WIDTH];
            for (int i = 0; i < A_PAR; i++) begin
                next_acc[o*ACC_WIDTH +: ACC_WIDTH] = next_acc[o*ACC_WIDTH +: ACC_WIDTH]
                    + a_ext(a_row[A_ADDR_W'(int'(step) * A_PAR + i)]) * b_ext(b_word[i][o]);
            end
        end
    end

    always_ff @(posedge clk) begin
        if (rst) begin
            state  <= LOAD_B;
            b_beat <= '0;
            b_row  <= '0;
            b_col  <= '0;
            a_beat <= '0;
            row    <= '0;
            group  <= '0;
            step   <= '0;
        end else begin
            case (state)
                LOAD_B: if (s_axis_b_tvalid) begin
                    if (int'(b_col) + B_PAR == B_ROW_LEN) begin
                        b_col <= '0;
                        b_row <= last_b_beat ? '0 : b_row + BR_W'(1);
                    end else begin
                        b_col <= b_col + BC_W'(B_PAR);
                    end
                    b_beat <= last_b_beat ? '0 : b_beat + BB_W'(1);
                    state  <= last_b_beat ? LOAD_A : LOAD_B;
                end
                LOAD_A: if (s_axis_a_tvalid) begin
                    for (int lane = 0; lane < A_PAR; lane++) begin
                        a_row[A_ADDR_W'(32'(a_beat) * A_PAR + lane)] <= s_axis_a_tdata[lane*A_WIDTH +: A_WIDTH];
                    end
                    a_beat <= last_a_beat ? '0 : a_beat + AB_W'(1);
                    state  <= last_a_beat ? MAC : LOAD_A;
                end
                MAC: begin
                    acc   <= next_acc;
                    step  <= last_step ? '0 : step + STEP_W'(1);
                    state <= last_step ? EMIT : MAC;
                end
                EMIT: if (m_axis_tready) begin
                    group <= last_group ? '0 : group + GROUP_W'(1);
                    row   <= last_group ? (last_row ? '0 : row + ROW_W'(1)) : row;
                    state <= !last_group ? MAC : (last_row ? LOAD_B : LOAD_A);
                end
            endcase
        end
    end

    // ---- the group leaves through one cast per lane ----
    for (genvar o = 0; o < OUT_PAR; o++) begin : g_out
        fixed_cast_lane #(
            .IN_WIDTH(ACC_WIDTH), .IN_FRAC(IN_FRAC), .IN_SIGNED(1'b1),
            .OUT_WIDTH(OUT_WIDTH), .OUT_FRAC(OUT_FRAC), .OUT_SIGNED(OUT_SIGNED),
            .ROUNDING(ROUNDING), .OVERFLOW(OVERFLOW)
        ) u_cast (
            .data_in (acc[o*ACC_WIDTH +: ACC_WIDTH]),
            .data_out(m_axis_tdata[o*OUT_WIDTH +: OUT_WIDTH])
        );
    end
endmodule
`default_nettype wire
