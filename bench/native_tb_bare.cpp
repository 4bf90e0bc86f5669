// native_tb_bare.cpp -- bench only (bench/native_tb.py): the "bare loop", the
// Verilated lbgen_top with s_axis_tvalid and m_axis_tready always high, input
// data 0, no checks, no files: the fastest this model can be clocked, the
// yardstick of the native testbench. Usage: Vlbgen_top <cycles>; prints
// "cycles <n> out_beats <n> seconds <s>".
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include "verilated.h"
#include "Vlbgen_top.h"

int main(int argc, char** argv) {
    const std::unique_ptr<VerilatedContext> ctx{new VerilatedContext};
    ctx->commandArgs(argc, argv);
    const long cycles = argc > 1 ? std::atol(argv[1]) : 100000;
    const std::unique_ptr<Vlbgen_top> top{new Vlbgen_top{ctx.get(), "lbgen_top"}};
    top->clk = 0;
    top->rst_n = 0;
    top->s_axis_tvalid = 0;
    top->s_axis_tlast = 0;
    top->m_axis_tready = 1;
    for (int i = 0; i < 8; ++i) {
        top->clk = 1; top->eval();
        top->clk = 0; top->eval();
    }
    top->rst_n = 1;
    top->s_axis_tvalid = 1;
    long beats = 0;
    const auto t0 = std::chrono::steady_clock::now();
    for (long c = 0; c < cycles; ++c) {
        beats += top->m_axis_tvalid;      // tready is always high: a valid beat is a handshake
        top->clk = 1; top->eval();
        top->clk = 0; top->eval();
    }
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("cycles %ld out_beats %ld seconds %.6f\n", cycles, beats, s);
    top->final();
    return 0;
}
