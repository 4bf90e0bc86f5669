`timescale 1ns/1ps
// lb_pe_mac -- processing element for unsigned or signed weights (PE_KIND 2),
// any inputs: the partial products w_i & x_j at 2^(i+j) (Baugh-Wooley: a
// pair with exactly one negative bit -- the signed top of w, the signed top
// of x -- is complemented, the caller's offset takes -2^(i+j)); bipolar x:
// xnor(w_i, x) at 2^i (x_b ? w : ~w, the signed top complemented), plus the
// activation-only bits ~x_b at 2^0 and, for unsigned w, x_b at 2^WB. Lanes
// are compressed three at a time by full adders right away (each output bit
// one LUT6 over the six operand bits), so no product is ever registered on
// its own.
//
// Ports, parameters and BEHAVIORAL are those of every lb_pe_* core; the
// registers and the reduction to fold sums are lb_pe_reduce (see there).
module lb_pe_mac #(
  parameter PE           = 1,
  parameter SIMD         = 1,
  parameter WEIGHT_BITS  = 1,
  parameter W_KIND       = 1,
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
  localparam LB = (XB != 0) ? WB + 1 : WB + XH;      // bits of a lane's heap value
  localparam LW = LB;
  localparam NR = (XB != 0) ? 4 * NT : 2 * NT * XH;   // heap rows

  // activation-only heap bits of bipolar x: ~x_b at 2^0 and, for unsigned
  // weights, x_b at 2^WB
  function [HW-1:0] act_bits;
    input xb;
    begin
      act_bits = {HW{1'b0}};
      act_bits[0] = ~xb;
      if (W_KIND == 1) act_bits[WB] = xb;
    end
  endfunction

  // constant part of the products that the heap adds back (Baugh-Wooley)
  // (modulo 2^LW: the lane value is kept in LW bits)
  function [LW-1:0] neg_pairs;
    input [31:0] dummy;
    integer i, jj;
    begin
      neg_pairs = {LW{1'b0}};
      for (i = 0; i < WB; i = i + 1)
        for (jj = 0; jj < IB; jj = jj + 1)
          if ((W_KIND == 2 && i == WB - 1) != (IN_KIND == 2 && jj == IB - 1) && dummy != 32'hffffffff)
            neg_pairs = neg_pairs + ({{(LW-1){1'b0}}, 1'b1} << (i + jj));
    end
  endfunction

  localparam [LW-1:0] NEGC = neg_pairs(0);
  localparam [0:0]    SW   = (W_KIND == 2) ? 1'b1 : 1'b0;
  localparam [0:0]    SX   = (IN_KIND == 2) ? 1'b1 : 1'b0;
  localparam [0:0]    UNS  = (W_KIND == 1) ? 1'b1 : 1'b0;
  localparam [LW-1:0] ONE  = 1;
  localparam [LW-1:0] TOPW = (W_KIND == 2) ? (ONE << (WB - 1)) : {LW{1'b0}};

  // word-level lane value, modulo 2^LW: bipolar x: (x_b ? w : ~w) (signed
  // top complemented) + ~x_b + (x_b << WB for unsigned w); else w * x + NEGC
  function [LW-1:0] lane;
    input [WB-1:0] c;
    input [IB-1:0] xv;
    reg   [LW-1:0] a, b, v;
    begin
      if (XB != 0) begin
        v = ({{(LW-WB){1'b0}}, ~(c ^ {WB{xv[0]}})} ^ TOPW) + {{(LW-1){1'b0}}, ~xv[0]}
            + ({{(LW-1){1'b0}}, xv[0] & UNS} << WB);
        a = {LW{1'b0}};
        b = {LW{1'b0}};
      end else begin
        a = {{(LW-WB){SW & c[WB-1]}}, c};
        b = {{(LW-IB){SX & xv[IB-1]}}, xv};
        v = a * b + NEGC;
      end
      lane = v;
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

  // weight field of lane l in every PE field (the weight code, low bits;
  // zero when l >= SIMD). A function of the whole weight word: a process
  // that reads it wakes once per new word, not once per lane and PE.
  function [FW-1:0] wf;
    input [PE*SIMD*WB-1:0] ww;
    input [31:0]           l;
    integer p;
    begin
      wf = {FW{1'b0}};
      if (l < SIMD)
        for (p = 0; p < PE; p = p + 1) wf[p*HW +: WB] = ww[(p*SIMD + l)*WB +: WB];
    end
  endfunction

  // ---- parameter checks: a failing check instantiates a module that does
  // ---- not exist, so elaboration stops with its name as the message.
  generate
    if (PE < 1 || SIMD < 1 || WB < 1 || IB < 1 || HW < 2 || HW < LB) begin : g_err_size
      lb_pe_mac_error_sizes_must_be_positive_and_HW_hold_a_lane u_err ();
    end
    if ((W_KIND != 1 && W_KIND != 2) || IN_KIND < 0 || IN_KIND > 2 || (XB != 0 && IB != 1)) begin : g_err_kind
      lb_pe_mac_error_needs_integer_weights_and_bipolar_or_integer_inputs u_err ();
    end
    if (BEHAVIORAL != 0 && BEHAVIORAL != 1) begin : g_err_behavioral
      lb_pe_mac_error_BEHAVIORAL_must_be_0_or_1 u_err ();
    end
  endgenerate

  genvar q, t, j;

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
      localparam [FW-1:0] FWB = fmask(0, (WB < HW) ? WB : HW);
      if (XB != 0) begin : g_bip
        // x_b ? w : ~w bitwise (signed top: complemented), then ~x_b at 2^0
        // and, for unsigned w, x_b at 2^WB
        localparam [FW-1:0] TOP = (W_KIND == 2) ? fmask(WB - 1, WB) : {FW{1'b0}};
        for (t = 0; t < NT; t = t + 1) begin : g_t
          localparam L0 = 3*t, L1 = (3*t+1 < SIMD) ? 3*t+1 : 0, L2 = (3*t+2 < SIMD) ? 3*t+2 : 0;
          reg [FW-1:0] a0, a1, a2, c0, c1, c2;
          always @* begin
            a0 = (3*t   < SIMD) ? (~(wf(w, 3*t+0) ^ {PE{{(HW-WB){1'b0}}, {WB{x[L0*IB + 0]}}}}) ^ TOP) & FWB : {FW{1'b0}};
            a1 = (3*t+1 < SIMD) ? (~(wf(w, 3*t+1) ^ {PE{{(HW-WB){1'b0}}, {WB{x[L1*IB + 0]}}}}) ^ TOP) & FWB : {FW{1'b0}};
            a2 = (3*t+2 < SIMD) ? (~(wf(w, 3*t+2) ^ {PE{{(HW-WB){1'b0}}, {WB{x[L2*IB + 0]}}}}) ^ TOP) & FWB : {FW{1'b0}};
            c0 = (3*t   < SIMD) ? {PE{act_bits(x[L0*IB + 0])}} : {FW{1'b0}};
            c1 = (3*t+1 < SIMD) ? {PE{act_bits(x[L1*IB + 0])}} : {FW{1'b0}};
            c2 = (3*t+2 < SIMD) ? {PE{act_bits(x[L2*IB + 0])}} : {FW{1'b0}};
            rows_d[t*FW +: FW]        = a0 ^ a1 ^ a2;
            rows_d[(NT+t)*FW +: FW]   = (((a0 & a1) | (a0 & a2) | (a1 & a2)) << 1) & M1;
            rows_d[(2*NT+t)*FW +: FW] = c0 ^ c1 ^ c2;
            rows_d[(3*NT+t)*FW +: FW] = (((c0 & c1) | (c0 & c2) | (c1 & c2)) << 1) & M1;
          end
        end
      end else begin : g_int
        // partial products w_i & x_j at 2^(i+j), per activation bit j; a pair
        // with exactly one negative bit (signed top of w, signed top of x) is
        // complemented
        for (j = 0; j < XH; j = j + 1) begin : g_j
          localparam XNEG = (IN_KIND == 2 && j == IB - 1) ? 1 : 0;
          localparam [FW-1:0] NEGM = (W_KIND == 2 && XNEG != 0) ? fmask(0, WB - 1)
                                   : (W_KIND == 2) ? fmask(WB - 1, WB)
                                   : (XNEG != 0) ? fmask(0, WB) : {FW{1'b0}};
          for (t = 0; t < NT; t = t + 1) begin : g_t
            localparam L0 = 3*t, L1 = (3*t+1 < SIMD) ? 3*t+1 : 0, L2 = (3*t+2 < SIMD) ? 3*t+2 : 0;
            reg [FW-1:0] a0, a1, a2;
            always @* begin
              a0 = (3*t   < SIMD) ? ((wf(w, 3*t+0) & {PE{{(HW-WB){1'b0}}, {WB{x[L0*IB + j]}}}}) ^ NEGM) << j : {FW{1'b0}};
              a1 = (3*t+1 < SIMD) ? ((wf(w, 3*t+1) & {PE{{(HW-WB){1'b0}}, {WB{x[L1*IB + j]}}}}) ^ NEGM) << j : {FW{1'b0}};
              a2 = (3*t+2 < SIMD) ? ((wf(w, 3*t+2) & {PE{{(HW-WB){1'b0}}, {WB{x[L2*IB + j]}}}}) ^ NEGM) << j : {FW{1'b0}};
              rows_d[(2*NT*j+t)*FW +: FW]    = a0 ^ a1 ^ a2;
              rows_d[(2*NT*j+NT+t)*FW +: FW] = (((a0 & a1) | (a0 & a2) | (a1 & a2)) << 1) & M1;
            end
          end
        end
      end
    end
  endgenerate
endmodule
