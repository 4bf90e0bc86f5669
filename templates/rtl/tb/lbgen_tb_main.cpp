// lbgen_tb_main.cpp -- testbench only: the Verilator main of the native
// testbench (lbgen_tb.v.j2 built with -DLB_TB_EXT_CLK). It only toggles
// the clock until the testbench calls $finish; everything else (stimulus,
// back-pressure, probes, stop conditions) is in the Verilog testbench, so
// Icarus and Verilator run the same one. Plusargs pass through.
#include <memory>
#include "verilated.h"
#include "Vlbgen_tb.h"

int main(int argc, char** argv) {
    const std::unique_ptr<VerilatedContext> ctx{new VerilatedContext};
    ctx->commandArgs(argc, argv);
    const std::unique_ptr<Vlbgen_tb> tb{new Vlbgen_tb{ctx.get(), "lbgen_tb"}};
    tb->clk = 0;
    tb->eval();
    while (!ctx->gotFinish()) {
        ctx->timeInc(5);
        tb->clk = !tb->clk;
        tb->eval();
    }
    tb->final();
    return 0;
}
