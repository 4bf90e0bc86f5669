`timescale 1ns/1ps
// lb_pe_addsub -- processing element for bipolar weights x k-bit inputs
// (PE_KIND 1, unsigned or signed x): per lane xnor(w, x_j) at 2^j, i.e. x
// where w = +1 and ~x where w = -1 (~x = -x-1: the -1s and the signed top
// bit, complemented here, go to the caller's offset). Lanes are compressed
// three at a time by full adders right away (one sum and one carry row per
// triple; each output bit one LUT6 over the six operand bits), so no
// product is ever registered on its own.
//
// Ports, parameters and BEHAVIORAL are those of every lb_pe_* core; the
// registers and the reduction to fold sums are lb_pe_reduce (see there).
module lb_pe_addsub #(
  parameter PE           = 1,
  parameter SIMD         = 1,
  parameter WEIGHT_BITS  = 1,
  parameter W_KIND       = 0,
  parameter IN_BITS      = 1,
  parameter IN_KIND      = 1,
  /* verilator lint_off UNUSEDPARAM */
  parameter N_PLANES     = 1,          // planes only; same parameters for every core
  parameter [127:0] PLANE_SCALES = 128'd1,
  /* verilator lint_on UNUSEDPARAM */
  parameter HW           = 8,   // fold sum bits per PE (lb_mvau_core: exact for SIMD lanes)
  parameter BEHAVIORAL   = 0    // 0 bit-level heap (synthesis), 1 word-level model
) (
  input  wire                           clk,
  input  wire                           en,
  input  wire [PE*SIMD*WEIGHT_BITS-1:0] w,
  input  wire [SIMD*IN_BITS-1:0]        x,
  output wire [PE*HW-1:0]               sum
);
  localparam WB = WEIGHT_BITS;
  localparam IB = IN_BITS;
  localparam XB = (IN_KIND == 0) ? 1 : 0;            // bipolar x
  localparam XH = (XB != 0) ? 1 : IB;                // activation bits seen by the heap
  localparam NT = (SIMD + 2) / 3;                    // lane triples
  localparam FW = PE * HW;                           // one heap row
  localparam NL = PE * SIMD;                         // lanes
  localparam LB = XH;                                // bits of a lane's heap value
  localparam LW = LB;
  localparam NR = 2 * NT;                             // heap rows
  localparam [LW-1:0] ONE  = 1;
  localparam [LW-1:0] TOPX = (IN_KIND == 2) ? (ONE << (XH - 1)) : {LW{1'b0}};

  // word-level lane value: x or ~x, the signed top bit complemented
  function [LW-1:0] lane;
    input [WB-1:0] c;
    input [IB-1:0] xv;
    begin
      lane = ~({XH{c[0]}} ^ xv[XH-1:0]) ^ TOPX;
    end
  endfunction

  // field masks
  function [FW-1:0] fmask;                // bits [lo, hi) of every field
    input [31:0] lo;
    input [31:0] hi;
    integer i;
    begin
      for (i = 0; i < FW; i = i + 1) fmask[i] = ((i % HW) >= lo) && ((i % HW) < hi);
    end
  endfunction

  // weight field of lane l in every PE field (the weight bit, XH times, low bits;
  // zero when l >= SIMD). A function of the whole weight word: a process
  // that reads it wakes once per new word, not once per lane and PE.
  function [FW-1:0] wf;
    input [PE*SIMD*WB-1:0] ww;
    input [31:0]           l;
    integer p;
    begin
      wf = {FW{1'b0}};
      if (l < SIMD)
        for (p = 0; p < PE; p = p + 1) wf[p*HW +: XH] = {XH{ww[p*SIMD + l]}};
    end
  endfunction

  // ---- parameter checks: a failing check instantiates a module that does
  // ---- not exist, so elaboration stops with its name as the message.
  generate
    if (PE < 1 || SIMD < 1 || WB < 1 || IB < 1 || HW < 2 || HW < LB) begin : g_err_size
      lb_pe_addsub_error_sizes_must_be_positive_and_HW_hold_a_lane u_err ();
    end
    if (W_KIND != 0 || WB != 1 || (IN_KIND != 1 && IN_KIND != 2)) begin : g_err_kind
      lb_pe_addsub_error_needs_1_bit_bipolar_weights_and_integer_inputs u_err ();
    end
    if (BEHAVIORAL != 0 && BEHAVIORAL != 1) begin : g_err_behavioral
      lb_pe_addsub_error_BEHAVIORAL_must_be_0_or_1 u_err ();
    end
  endgenerate

  genvar q, t;

  wire [NL*LW-1:0] hv_d;     // BEHAVIORAL = 1: each lane's heap value, PE-major
  reg  [NR*FW-1:0] rows_d;   // BEHAVIORAL = 0: level-1 heap rows (one part per process)
  lb_pe_reduce #(
    .PE(PE), .SIMD(SIMD), .HW(HW), .LW(LW), .NR(NR), .BEHAVIORAL(BEHAVIORAL)
  ) u_reduce (
    .clk(clk), .en(en), .lanes(hv_d), .rows(rows_d), .sum(sum)
  );

  generate
    if (BEHAVIORAL != 0) begin : g_word
      // ---- word-level model: each lane's value (LW bits)
      for (q = 0; q < NL; q = q + 1) begin : g_q
        assign hv_d[q*LW +: LW] = lane(w[q*WB +: WB], x[(q%SIMD)*IB +: IB]);
      end
      always @* rows_d = {NR*FW{1'b0}};
    end else begin : g_heap
      // ---- bit heap: level-1 rows
      assign hv_d = {NL*LW{1'b0}};
      localparam [FW-1:0] M1  = fmask(1, HW);
      localparam [FW-1:0] FXH = fmask(0, XH);
      // x (or ~x where w = -1) per lane; the signed top bit complemented
      localparam [FW-1:0] TOP = (IN_KIND == 2) ? fmask(IB - 1, IB) : {FW{1'b0}};
      for (t = 0; t < NT; t = t + 1) begin : g_t
        localparam L0 = 3*t, L1 = (3*t+1 < SIMD) ? 3*t+1 : 0, L2 = (3*t+2 < SIMD) ? 3*t+2 : 0;
        reg [FW-1:0] a0, a1, a2;
        always @* begin
          a0 = (3*t   < SIMD) ? (~(wf(w, 3*t+0) ^ {PE{{(HW-XH){1'b0}}, x[L0*IB +: XH]}}) ^ TOP) & FXH : {FW{1'b0}};
          a1 = (3*t+1 < SIMD) ? (~(wf(w, 3*t+1) ^ {PE{{(HW-XH){1'b0}}, x[L1*IB +: XH]}}) ^ TOP) & FXH : {FW{1'b0}};
          a2 = (3*t+2 < SIMD) ? (~(wf(w, 3*t+2) ^ {PE{{(HW-XH){1'b0}}, x[L2*IB +: XH]}}) ^ TOP) & FXH : {FW{1'b0}};
          rows_d[t*FW +: FW]      = a0 ^ a1 ^ a2;
          rows_d[(NT+t)*FW +: FW] = (((a0 & a1) | (a0 & a2) | (a1 & a2)) << 1) & M1;
        end
      end
    end
  endgenerate
endmodule
