// The clock of sim/tb_bulk.sv (built with +define+TB_EXTERNAL_CLOCK by flow/simulation/bulk_engine.py):
// two evaluations a cycle until the testbench calls $finish. Plusargs pass through.
#include <memory>

#include "Vtb_bulk.h"
#include "verilated.h"

int main(int argc, char** argv) {
    const std::unique_ptr<VerilatedContext> context{new VerilatedContext};
    context->commandArgs(argc, argv);
    const std::unique_ptr<Vtb_bulk> top{new Vtb_bulk{context.get()}};
    top->clk = 0;
    top->eval();
    while (!context->gotFinish()) {
        context->timeInc(5);
        top->clk = 1;
        top->eval();
        context->timeInc(5);
        top->clk = 0;
        top->eval();
    }
    top->final();
    return 0;
}
