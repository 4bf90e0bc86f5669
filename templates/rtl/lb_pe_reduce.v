`timescale 1ns/1ps
// lb_pe_reduce -- the back end every lb_pe_* core shares: it registers the
// core's level-1 terms and reduces them to the per-PE fold sums.
//
// Every lb_pe_* core has the same parameters and ports (lb_mvau_core picks
// one by PE_KIND): w = weight word, element p*SIMD+s = code of PE p, lane s
// (WEIGHT_BITS each), x = input beat (SIMD x IN_BITS), both with the beat;
// sum = the per-PE fold sums of the beat that came one enabled cycle earlier
// (field p = sum over the lanes of PE p of the lane's heap value, HW bits,
// exact: HW covers SIMD lanes), combinational from the register here. The
// caller accumulates sum << SH plus the constant part the heap leaves out
// (lbgen.pe: each PE's heap_offsets).
//
// BEHAVIORAL = 0 (default; what synthesis builds and the default tests
// simulate): the core hands over `rows`, NR level-1 heap rows of PE fields
// of HW bits; they are registered and summed by lb_rowsum's 6:3 counter
// tree. BEHAVIORAL = 1: the core hands over `lanes`, each lane's heap value
// as an LW-bit word (PE-major); they are registered and summed by an adder
// tree per PE (lb_adder_tree). Same latency and results (tests/
// test_pe_cores.py runs both side by side); the input of the other mode is
// unused. The cores' processes read whole words (w, x, a level of the
// tree), so an event-driven simulator wakes each of them once per new word.
module lb_pe_reduce #(
  parameter PE         = 1,
  parameter SIMD       = 1,
  parameter HW         = 8,    // fold sum bits per PE
  parameter LW         = 1,    // bits of a lane value (BEHAVIORAL = 1)
  parameter NR         = 1,    // heap rows (BEHAVIORAL = 0)
  parameter BEHAVIORAL = 0
) (
  input  wire                   clk,
  input  wire                   en,
  /* verilator lint_off UNUSEDSIGNAL */
  input  wire [PE*SIMD*LW-1:0]  lanes,
  input  wire [NR*PE*HW-1:0]    rows,
  /* verilator lint_on UNUSEDSIGNAL */
  output wire [PE*HW-1:0]       sum
);
  generate
    if (PE < 1 || SIMD < 1 || HW < 2 || LW < 1 || NR < 1) begin : g_err_size
      lb_pe_reduce_error_sizes_must_be_positive u_err ();
    end
    if (BEHAVIORAL != 0 && BEHAVIORAL != 1) begin : g_err_behavioral
      lb_pe_reduce_error_BEHAVIORAL_must_be_0_or_1 u_err ();
    end
  endgenerate

  genvar p;
  generate
    if (BEHAVIORAL != 0) begin : g_word
      reg [PE*SIMD*LW-1:0] lanes2;
      always @(posedge clk) begin
        if (en) lanes2 <= lanes;
      end
      for (p = 0; p < PE; p = p + 1) begin : g_red
        lb_adder_tree #(
          .N(SIMD), .IN_W(LW), .OUT_W(HW), .IN_SIGNED(0)
        ) u_tree (
          .in(lanes2[p*SIMD*LW +: SIMD*LW]), .sum(sum[p*HW +: HW])
        );
      end
    end else begin : g_heap
      reg [NR*PE*HW-1:0] rows2;
      always @(posedge clk) begin
        if (en) rows2 <= rows;
      end
      lb_rowsum #(
        .N(NR), .W(HW), .M(PE)
      ) u_sum (
        .rows(rows2), .sum(sum)
      );
    end
  endgenerate
endmodule
