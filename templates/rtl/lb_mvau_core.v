`timescale 1ns/1ps
// lb_mvau_core -- the compute of lb_mvau: PE dot products over SIMD lanes per
// cycle, accumulated over the synapse folds. No memories: the weight word,
// the input beat and the initial accumulators come in on ports.
//
// Ports (all stages advance together on `en`):
//   stage 1 in : valid, first (first synapse fold of a neuron fold),
//                w = weight word, element p*SIMD+s = code of PE p, lane s
//                (WEIGHT_BITS each), x = input beat (SIMD x IN_BITS);
//   stage 3 in : init = PE initial accumulators (ACC_BITS each), used with
//                the fold sum of the beat that came with first=1 (the
//                caller reads them from a ROM two enabled cycles later);
//   stage 4 out: acc = PE accumulators, modulo 2^ACC_BITS, updated with the
//                fold of every valid beat; complete after the last fold.
//
// Numbers: kinds 0 bipolar (bit b = value 2b-1), 1 unsigned, 2 signed,
// 3 log2 (sign bit on top, exponent field f: 0 is the value 0, else
// (-1)^sign * 2^(f-1)), 4 hetero (N_PLANES bipolar planes: bits [0,N) plane
// signs s_i, bits [N,2N-1) the masks u_1..u_{N-1}, u_0 = 1; value =
// sum_i u_i * k_i * (2 s_i - 1), k_i = PLANE_SCALES[32*i +: 32]).
//
// Datapath: every kind is a bit heap. Per lane the product w*x is written
// as a sum of bits at weights 2^c that are simple functions of the operand
// bits, plus a constant that depends on the weights only (folded into the
// caller's initial accumulator, see lbgen.emit.rtl.accumulator_offsets):
//   PE_KIND 0 xnor  : xnor(w, x)                              fold x 2
//   PE_KIND 1 addsub: bipolar w, k-bit x: xnor(w, x_j) at 2^j, i.e. x or ~x
//                     (~x = -x-1: the -1s and the signed top bit go to the
//                     offset)
//   PE_KIND 2 mac   : w_i & x_j at 2^(i+j) (Baugh-Wooley: a pair with one
//                     negative weight bit is complemented, the offset
//                     takes -2^(i+j)); bipolar x: xnor(w_i, x) at 2^i
//   PE_KIND 3 shift : log2 w: (x ^ sign) << (f-1), zero when f = 0 -- a
//                     shift and a conditional complement, no multiplier
//   PE_KIND 4 planes: hetero w: per plane i and set bit b of k_i the masked
//                     xnor u_i & xnor(s_i, x_j) at 2^(j+b)
// Bipolar x in shift and planes is the 1-bit unsigned x_b = (x+1)/2:
// w*x = 2*w*x_b - w (fold x 2, offset -sum w). Bits that depend on two
// operand bits (xnor, addsub, mac, plane 0) are compressed three lanes at a
// time by full adders right away (each output bit one LUT6 over the six
// operand bits), so no product is ever registered on its own; the rest of
// the heap is lb_rowsum's 6:3 counter tree. Everything is vectorised over
// the PEs: a row holds PE fields of HW bits.
//
// Pipeline: 2 heap (level 1, registered), 3 fold sum (registered),
// 4 accumulate (registered).
module lb_mvau_core #(
  parameter PE           = 1,
  parameter SIMD         = 1,
  parameter WEIGHT_BITS  = 1,
  parameter W_KIND       = 0,
  parameter IN_BITS      = 1,
  parameter IN_KIND      = 0,
  parameter ACC_BITS     = 8,
  parameter PE_KIND      = 0,
  parameter N_PLANES     = 1,
  parameter [127:0] PLANE_SCALES = 128'd1
) (
  input  wire                        clk,
  input  wire                        en,
  input  wire                        valid,
  input  wire                        first,
  input  wire [PE*SIMD*WEIGHT_BITS-1:0] w,
  input  wire [SIMD*IN_BITS-1:0]     x,
  input  wire [PE*ACC_BITS-1:0]      init,
  output wire [PE*ACC_BITS-1:0]      acc
);
  localparam WB = WEIGHT_BITS;
  localparam IB = IN_BITS;
  // the kind actually built: bipolar weights are always xnor (bipolar x) or
  // addsub, whatever PE_KIND says
  localparam K  = (W_KIND == 0) ? ((IN_KIND == 0) ? 0 : 1) : PE_KIND;
  localparam XB = (IN_KIND == 0) ? 1 : 0;            // bipolar x

  // ---- sizes ------------------------------------------------------------
  function integer scale;                 // k_i (0 for i >= N_PLANES)
    input [31:0] i;
    begin
      scale = (i < N_PLANES) ? PLANE_SCALES[32*i +: 32] : 0;
    end
  endfunction

  function integer scale_bits;            // widest plane scale, in bits
    input [31:0] dummy;
    integer i, b;
    begin
      scale_bits = 1;
      for (i = 0; i < 4; i = i + 1)
        for (b = 0; b < 31; b = b + 1)
          if (((scale(i) >> b) & 1) != 0 && b + 1 > scale_bits) scale_bits = b + 1;
      if (dummy == 32'hffffffff) scale_bits = 0;
    end
  endfunction

  function integer sum_scales;
    input [31:0] dummy;
    integer i;
    begin
      sum_scales = 0;
      for (i = 0; i < 4; i = i + 1) sum_scales = sum_scales + scale(i);
      if (dummy == 32'hffffffff) sum_scales = 0;
    end
  endfunction

  // number of set bits of k_i below bit b, over planes i0 <= i' < i1 (all
  // bits) -- to place the rows of (plane, bit) one after another
  function integer set_bits;
    input [31:0] k;
    input [31:0] below;
    integer b;
    begin
      set_bits = 0;
      for (b = 0; b < below; b = b + 1) set_bits = set_bits + ((k >> b) & 1);
    end
  endfunction

  function integer bitlen;                // bits of a value < 2^31
    input [31:0] v;
    integer b;
    begin
      bitlen = 0;
      for (b = 0; b < 31; b = b + 1) if ((v >> b) != 0) bitlen = b + 1;
    end
  endfunction

  // ---- parameter checks -----------------------------------------------
  generate
    if (PE < 1 || SIMD < 1 || WB < 1 || IB < 1 || ACC_BITS < 2) begin : g_err_size
      lb_mvau_core_error_sizes_must_be_positive u_err ();
    end
    if (W_KIND < 0 || W_KIND > 4 || IN_KIND < 0 || IN_KIND > 2) begin : g_err_kind
      lb_mvau_core_error_W_KIND_0_to_4_IN_KIND_0_to_2 u_err ();
    end
    if (PE_KIND < 0 || PE_KIND > 4) begin : g_err_pe_kind
      lb_mvau_core_error_PE_KIND_must_be_0_to_4 u_err ();
    end
    if ((K == 0 || K == 1) && W_KIND != 0) begin : g_err_bip
      lb_mvau_core_error_xnor_and_addsub_need_bipolar_weights u_err ();
    end
    if (K == 2 && W_KIND != 1 && W_KIND != 2) begin : g_err_mac
      lb_mvau_core_error_mac_needs_integer_weights u_err ();
    end
    if (K == 3 && (W_KIND != 3 || WB < 2 || WB > 6)) begin : g_err_shift
      lb_mvau_core_error_shift_needs_log2_weights_of_2_to_6_bits u_err ();
    end
    if (K == 4 && (W_KIND != 4 || N_PLANES < 1 || N_PLANES > 4 || WB != 2*N_PLANES - 1)) begin : g_err_planes
      lb_mvau_core_error_planes_needs_hetero_weights_of_2N_minus_1_bits_N_1_to_4 u_err ();
    end
    if (K == 4 && (scale(0) < 1 || (N_PLANES > 1 && scale(1) < 1) || (N_PLANES > 2 && scale(2) < 1)
                   || (N_PLANES > 3 && scale(3) < 1) || scale_bits(0) > 17)) begin : g_err_scales
      lb_mvau_core_error_PLANE_SCALES_must_be_1_to_65536 u_err ();
    end
    if ((K == 3 || K == 4) && IN_KIND == 2) begin : g_err_in
      lb_mvau_core_error_shift_and_planes_take_bipolar_or_unsigned_inputs u_err ();
    end
  endgenerate

  // activation bits seen by the heap (bipolar: one bit)
  localparam XH   = (XB != 0) ? 1 : IB;
  localparam EMAX = (K == 3) ? (1 << (WB - 1)) - 2 : 0;          // largest log2 exponent
  // bits of the largest per-lane heap value
  localparam LB = (K == 0) ? 1
                : (K == 1) ? XH
                : (K == 2) ? ((XB != 0) ? WB + 1 : WB + XH)
                : (K == 3) ? XH + EMAX
                :            XH + bitlen(sum_scales(0));
  localparam SB = $clog2(SIMD);
  // fold heap width: SIMD * lane max < 2^(LB+SB); exact when small
  localparam HW0 = (LB + SB <= 30) ? $clog2(SIMD * ((1 << LB) - 1) + 1) : LB + SB;
  localparam HW  = (HW0 < 2) ? 2 : HW0;
  localparam SH  = (K == 0 || ((K == 3 || K == 4) && XB != 0)) ? 1 : 0;   // fold = heap << SH
  localparam NT  = (SIMD + 2) / 3;                                       // lane triples
  localparam FW  = PE * HW;                                              // one heap row
  // heap rows (level 1)
  localparam NP0 = (K == 4) ? set_bits(scale(0), 32) : 0;                // plane 0 set bits
  localparam NPR = (K == 4) ? set_bits(scale(1), 32) + set_bits(scale(2), 32) + set_bits(scale(3), 32) : 0;
  localparam NR = (K == 0) ? NT
                : (K == 1) ? 2 * NT
                : (K == 2) ? ((XB != 0) ? 4 * NT : 2 * NT * XH)
                : (K == 3) ? SIMD
                :            2 * NT * NP0 + SIMD * NPR;

  // field masks
  function [FW-1:0] fmask;                // bits [lo, hi) of every field
    input [31:0] lo;
    input [31:0] hi;
    integer i;
    begin
      for (i = 0; i < FW; i = i + 1) fmask[i] = ((i % HW) >= lo) && ((i % HW) < hi);
    end
  endfunction

  // activation-only heap bits of mac with bipolar x: ~x_b at 2^0 and, for
  // unsigned weights, x_b at 2^WB
  function [HW-1:0] act_bits;
    input xb;
    begin
      act_bits = {HW{1'b0}};
      act_bits[0] = ~xb;
      if (W_KIND == 1) act_bits[WB] = xb;
    end
  endfunction

  // ---- stages 2, 3: fold sums (heap per PE) ------------------------------
  reg  [FW-1:0] heap;                       // fold sums of the beat in stage 2
  reg  [FW-1:0] dot3;
  reg           v2, first2, v3, first3;

  always @(posedge clk) begin
    if (en) begin
      v2     <= valid;
      first2 <= first;
      dot3   <= heap;
      v3     <= v2;
      first3 <= first2;
    end
  end

  genvar t, k, p, j, b, s;
`ifdef __ICARUS__
  genvar q;
  // ---- Icarus: the same fold sums, word by word ---------------------------
  // Icarus pays per vector operation, and the heap above takes tens of
  // bitwise operations per lane; under Icarus (which defines __ICARUS__)
  // the fold sum is computed from each lane's heap value as a word, like
  // this: lane value hv(w, x) = what the lane's heap bits add up to, then an
  // adder tree per PE. Same ports, stages and results. Verilator and
  // synthesis build the heap, so the bit-level datapath is what the
  // Verilator runs prove bit-exact against the golden model, and the Icarus
  // runs prove these words against it.
  localparam LW = (LB < HW) ? LB : HW;      // lane value bits
  localparam NL = PE * SIMD;
  reg [NL*LW-1:0] hv2;

  always @(posedge clk) begin
    if (en) hv2 <= hv_d;
  end

  // constant part of mac products that the heap adds back (Baugh-Wooley)
  function integer neg_pairs;
    input [31:0] dummy;
    integer i, jj, c;
    begin
      c = 0;
      for (i = 0; i < WB; i = i + 1)
        for (jj = 0; jj < IB; jj = jj + 1)
          if ((W_KIND == 2 && i == WB - 1) != (IN_KIND == 2 && jj == IB - 1)) c = c + (1 << (i + jj));
      neg_pairs = (dummy == 32'hffffffff) ? 0 : c;
    end
  endfunction

  // heap value of every lane (LW bits), four lanes per process, written
  // into hv_d (read only by the register hv2). Lane q = p*SIMD + s: its
  // weight code C(q), its activation X(q).
  localparam PW = WB + IB + 1;              // exact signed product width
  localparam [LW-1:0] NEGC = neg_pairs(0);
  localparam [0:0]    SW   = (W_KIND == 2) ? 1'b1 : 1'b0;
  localparam [0:0]    SX   = (IN_KIND == 2) ? 1'b1 : 1'b0;
  localparam [0:0]    UNS  = (W_KIND == 1) ? 1'b1 : 1'b0;
  localparam [LW-1:0] ONE  = 1;
  localparam [LW-1:0] TOPX = (K == 1 && IN_KIND == 2) ? (ONE << (XH - 1)) : {LW{1'b0}};
  localparam [LW-1:0] TOPW = (K == 2 && W_KIND == 2) ? (ONE << (WB - 1)) : {LW{1'b0}};
  localparam [WB-1:0] ONE_F = 1;
  localparam NG = NL / 4;
  reg [NL*LW-1:0] hv_d;
`define LB_C(q) w[(q)*WB +: WB]
`define LB_X(q) x[((q)%SIMD)*IB +: IB]
`define LB_ADDSUB(q) ({{(LW-XH+1){1'b0}}, ~({XH{w[(q)*WB]}} ^ `LB_X(q))} ^ {1'b0, TOPX})
`define LB_MACB(q) ({1'b0, {(LW-WB){1'b0}}, ~(`LB_C(q) ^ {WB{x[((q)%SIMD)*IB]}})} ^ {1'b0, TOPW}) \
                   + {{LW{1'b0}}, ~x[((q)%SIMD)*IB]} + ({{LW{1'b0}}, x[((q)%SIMD)*IB] & UNS} << WB)
`define LB_MAC(q) ({{(PW-WB){SW & w[(q)*WB+WB-1]}}, `LB_C(q)} * {{(PW-IB){SX & x[((q)%SIMD)*IB+IB-1]}}, `LB_X(q)}) \
                  + {{(PW-LW){1'b0}}, NEGC}
`define LB_SHIFT(q) ((w[(q)*WB +: WB-1] == {(WB-1){1'b0}}) ? {(LW+1){1'b0}} \
                    : ({{(LW+1){1'b0}}, x[((q)%SIMD)*IB +: XH] ^ {XH{w[(q)*WB+WB-1]}}} << (w[(q)*WB +: WB-1] - ONE_F[WB-2:0])))
`define LB_PLANE(q, i) ((i) >= N_PLANES ? {(LW+1){1'b0}} \
                       : ((i) == 0 || w[(q)*WB + (N_PLANES + (i) - 1) % WB]) \
                         ? scale(i) * {{(LW+1-XH){1'b0}}, ~({XH{w[(q)*WB + (i) % WB]}} ^ x[((q)%SIMD)*IB +: XH])} \
                         : {(LW+1){1'b0}})
`define LB_PLANES(q) (`LB_PLANE(q, 0) + `LB_PLANE(q, 1) + `LB_PLANE(q, 2) + `LB_PLANE(q, 3))
`define LB_GROUPS(LANE) \
      for (q = 0; q < NG + NL % 4; q = q + 1) begin : g_q \
        localparam L = (q < NG) ? 4*q : 4*NG + (q - NG); \
        reg [PW+LW:0] l0, l1, l2, l3; \
        if (q < NG) begin : g_4 \
          always @* begin \
            l0 = LANE(L); \
            l1 = LANE(L+1); \
            l2 = LANE(L+2); \
            l3 = LANE(L+3); \
            hv_d[L*LW +: 4*LW] = {l3[LW-1:0], l2[LW-1:0], l1[LW-1:0], l0[LW-1:0]}; \
          end \
        end else begin : g_1 \
          always @* begin \
            l0 = LANE(L); \
            hv_d[L*LW +: LW] = l0[LW-1:0]; \
          end \
        end \
      end
  generate
    if (K == 0) begin : g_xnor
      for (p = 0; p < PE; p = p + 1) begin : g_pe
        always @* hv_d[p*SIMD +: SIMD] = ~(w[p*SIMD +: SIMD] ^ x);
      end
    end else if (K == 1) begin : g_addsub
      `LB_GROUPS(`LB_ADDSUB)
    end else if (K == 2 && XB != 0) begin : g_mac_bip
      `LB_GROUPS(`LB_MACB)
    end else if (K == 2) begin : g_mac
      `LB_GROUPS(`LB_MAC)
    end else if (K == 3) begin : g_shift
      `LB_GROUPS(`LB_SHIFT)
    end else begin : g_planes
      `LB_GROUPS(`LB_PLANES)
    end
  endgenerate
`undef LB_C
`undef LB_X
`undef LB_ADDSUB
`undef LB_MACB
`undef LB_MAC
`undef LB_SHIFT
`undef LB_PLANE
`undef LB_PLANES
`undef LB_GROUPS

  generate
    for (p = 0; p < PE; p = p + 1) begin : g_red
      wire [HW-1:0] hs;
      lb_adder_tree #(
        .N(SIMD), .IN_W(LW), .OUT_W(HW), .IN_SIGNED(0)
      ) u_tree (
        .in(hv2[p*SIMD*LW +: SIMD*LW]), .sum(hs)
      );
      always @* heap[p*HW +: HW] = hs;
    end
  endgenerate

`else
  // ---- stage 2: level-1 heap rows -------------------------------------
  reg  [NR*FW-1:0] rows_d;                // combinational, one part per process
  reg  [NR*FW-1:0] rows2;

  always @(posedge clk) begin
    if (en) rows2 <= rows_d;
  end

  localparam [FW-1:0] M1  = fmask(1, HW);
  localparam [FW-1:0] F01 = fmask(0, 1);
  localparam [FW-1:0] FXH = fmask(0, XH);
  localparam [FW-1:0] FWB = fmask(0, (WB < HW) ? WB : HW);
  generate
    if (K == 0 || K == 1 || (K == 2) || (K == 4 && NP0 > 0)) begin : g_tri
      // lane triples: operand fields of lane 3t+k (all PEs), zero if missing
      for (t = 0; t < NT; t = t + 1) begin : g_t
        for (k = 0; k < 3; k = k + 1) begin : g_k
          localparam L  = 3 * t + k;
          localparam LL = (L < SIMD) ? L : 0;          // a valid index, unused when missing
          localparam OK = (L < SIMD) ? 1 : 0;
          wire [FW-1:0] wf;                            // weight code per field (K 2: code, else bit 0 replicated)
          wire [IB-1:0] xl = x[LL*IB +: IB];
          for (p = 0; p < PE; p = p + 1) begin : g_p
            if (K == 2) begin : g_code
              assign wf[p*HW +: HW] = {{(HW-WB){1'b0}}, w[(p*SIMD+LL)*WB +: WB]};
            end else if (K == 4) begin : g_sign0
              assign wf[p*HW +: HW] = {{(HW-XH){1'b0}}, {XH{w[(p*SIMD+LL)*WB]}}};
            end else begin : g_bit
              assign wf[p*HW +: HW] = {{(HW-XH){1'b0}}, {XH{w[p*SIMD+LL]}}};
            end
          end
          if (OK == 0) begin : g_missing
            wire unused = &{1'b0, wf, xl};
          end
        end
      end
    end
  endgenerate

  generate
    if (K == 0) begin : g_xnor
      // one row per triple: sum bit at 0, carry at 1
      for (t = 0; t < NT; t = t + 1) begin : g_t
        reg [FW-1:0] a0, a1, a2;
        always @* begin
          a0 = (3*t   < SIMD) ? ~(g_tri.g_t[t].g_k[0].wf ^ {PE{{(HW-1){1'b0}}, g_tri.g_t[t].g_k[0].xl[0]}}) & F01 : {FW{1'b0}};
          a1 = (3*t+1 < SIMD) ? ~(g_tri.g_t[t].g_k[1].wf ^ {PE{{(HW-1){1'b0}}, g_tri.g_t[t].g_k[1].xl[0]}}) & F01 : {FW{1'b0}};
          a2 = (3*t+2 < SIMD) ? ~(g_tri.g_t[t].g_k[2].wf ^ {PE{{(HW-1){1'b0}}, g_tri.g_t[t].g_k[2].xl[0]}}) & F01 : {FW{1'b0}};
          rows_d[t*FW +: FW] = (a0 ^ a1 ^ a2) | ((((a0 & a1) | (a0 & a2) | (a1 & a2)) << 1) & M1);
        end
      end
    end else if (K == 1) begin : g_addsub
      // x (or ~x where w = -1) per lane; the signed top bit complemented
      localparam [FW-1:0] TOP = (IN_KIND == 2) ? fmask(IB - 1, IB) : {FW{1'b0}};
      for (t = 0; t < NT; t = t + 1) begin : g_t
        reg [FW-1:0] a0, a1, a2;
        always @* begin
          a0 = (3*t   < SIMD) ? (~(g_tri.g_t[t].g_k[0].wf ^ {PE{{(HW-XH){1'b0}}, g_tri.g_t[t].g_k[0].xl}}) ^ TOP) & FXH : {FW{1'b0}};
          a1 = (3*t+1 < SIMD) ? (~(g_tri.g_t[t].g_k[1].wf ^ {PE{{(HW-XH){1'b0}}, g_tri.g_t[t].g_k[1].xl}}) ^ TOP) & FXH : {FW{1'b0}};
          a2 = (3*t+2 < SIMD) ? (~(g_tri.g_t[t].g_k[2].wf ^ {PE{{(HW-XH){1'b0}}, g_tri.g_t[t].g_k[2].xl}}) ^ TOP) & FXH : {FW{1'b0}};
          rows_d[t*FW +: FW]      = a0 ^ a1 ^ a2;
          rows_d[(NT+t)*FW +: FW] = (((a0 & a1) | (a0 & a2) | (a1 & a2)) << 1) & M1;
        end
      end
    end else if (K == 2 && XB != 0) begin : g_mac_bip
      // x_b ? w : ~w bitwise (signed top: complemented), then ~x_b at 2^0
      // and, for unsigned w, x_b at 2^WB
      localparam [FW-1:0] TOP = (W_KIND == 2) ? fmask(WB - 1, WB) : {FW{1'b0}};
      for (t = 0; t < NT; t = t + 1) begin : g_t
        reg [FW-1:0] a0, a1, a2, c0, c1, c2;
        always @* begin
          a0 = (3*t   < SIMD) ? (~(g_tri.g_t[t].g_k[0].wf ^ {PE{{(HW-WB){1'b0}}, {WB{g_tri.g_t[t].g_k[0].xl[0]}}}}) ^ TOP) & FWB : {FW{1'b0}};
          a1 = (3*t+1 < SIMD) ? (~(g_tri.g_t[t].g_k[1].wf ^ {PE{{(HW-WB){1'b0}}, {WB{g_tri.g_t[t].g_k[1].xl[0]}}}}) ^ TOP) & FWB : {FW{1'b0}};
          a2 = (3*t+2 < SIMD) ? (~(g_tri.g_t[t].g_k[2].wf ^ {PE{{(HW-WB){1'b0}}, {WB{g_tri.g_t[t].g_k[2].xl[0]}}}}) ^ TOP) & FWB : {FW{1'b0}};
          c0 = (3*t   < SIMD) ? {PE{act_bits(g_tri.g_t[t].g_k[0].xl[0])}} : {FW{1'b0}};
          c1 = (3*t+1 < SIMD) ? {PE{act_bits(g_tri.g_t[t].g_k[1].xl[0])}} : {FW{1'b0}};
          c2 = (3*t+2 < SIMD) ? {PE{act_bits(g_tri.g_t[t].g_k[2].xl[0])}} : {FW{1'b0}};
          rows_d[t*FW +: FW]        = a0 ^ a1 ^ a2;
          rows_d[(NT+t)*FW +: FW]   = (((a0 & a1) | (a0 & a2) | (a1 & a2)) << 1) & M1;
          rows_d[(2*NT+t)*FW +: FW] = c0 ^ c1 ^ c2;
          rows_d[(3*NT+t)*FW +: FW] = (((c0 & c1) | (c0 & c2) | (c1 & c2)) << 1) & M1;
        end
      end
    end else if (K == 2) begin : g_mac
      // partial products w_i & x_j at 2^(i+j), per activation bit j; a pair
      // with exactly one negative bit (signed top of w, signed top of x) is
      // complemented
      for (j = 0; j < XH; j = j + 1) begin : g_j
        localparam XNEG = (IN_KIND == 2 && j == IB - 1) ? 1 : 0;
        localparam [FW-1:0] NEGM = (W_KIND == 2 && XNEG != 0) ? fmask(0, WB - 1)
                                 : (W_KIND == 2) ? fmask(WB - 1, WB)
                                 : (XNEG != 0) ? fmask(0, WB) : {FW{1'b0}};
        for (t = 0; t < NT; t = t + 1) begin : g_t
          reg [FW-1:0] a0, a1, a2;
          always @* begin
            a0 = (3*t   < SIMD) ? ((g_tri.g_t[t].g_k[0].wf & {PE{{(HW-WB){1'b0}}, {WB{g_tri.g_t[t].g_k[0].xl[j]}}}}) ^ NEGM) << j : {FW{1'b0}};
            a1 = (3*t+1 < SIMD) ? ((g_tri.g_t[t].g_k[1].wf & {PE{{(HW-WB){1'b0}}, {WB{g_tri.g_t[t].g_k[1].xl[j]}}}}) ^ NEGM) << j : {FW{1'b0}};
            a2 = (3*t+2 < SIMD) ? ((g_tri.g_t[t].g_k[2].wf & {PE{{(HW-WB){1'b0}}, {WB{g_tri.g_t[t].g_k[2].xl[j]}}}}) ^ NEGM) << j : {FW{1'b0}};
            rows_d[(2*NT*j+t)*FW +: FW]    = a0 ^ a1 ^ a2;
            rows_d[(2*NT*j+NT+t)*FW +: FW] = (((a0 & a1) | (a0 & a2) | (a1 & a2)) << 1) & M1;
          end
        end
      end
    end else if (K == 3) begin : g_shift
      // per lane and PE: (x ^ sign) << (f-1), zero when f = 0
      localparam [WB-2:0] ONE_F = 1;
      for (s = 0; s < SIMD; s = s + 1) begin : g_s
        wire [XH-1:0] xl = x[s*IB +: XH];
        for (p = 0; p < PE; p = p + 1) begin : g_p
          wire [WB-1:0]   c  = w[(p*SIMD+s)*WB +: WB];
          wire [WB-2:0]   f  = c[WB-2:0];
          wire [HW-1:0]   xs = {{(HW-XH){1'b0}}, xl ^ {XH{c[WB-1]}}};
          wire [WB-2:0]   e  = f - ONE_F;
          always @* rows_d[s*FW + p*HW +: HW] = (f == {(WB-1){1'b0}}) ? {HW{1'b0}} : (xs << e);
        end
      end
    end else begin : g_planes
      // plane 0 (always used): xnor(s_0, x_j), three lanes at a time, one
      // copy per set bit of k_0; planes 1..N-1: u_i & xnor(s_i, x_j) per lane
      localparam K0 = scale(0);
      for (b = 0; b < 17; b = b + 1) begin : g_b0
        if (((K0 >> b) & 1) != 0) begin : g_on
          localparam R0 = 2 * NT * set_bits(K0, b);      // first row of this copy
          for (t = 0; t < NT; t = t + 1) begin : g_t
            reg [FW-1:0] a0, a1, a2;
            always @* begin
              a0 = (3*t   < SIMD) ? (~(g_tri.g_t[t].g_k[0].wf ^ {PE{{(HW-XH){1'b0}}, g_tri.g_t[t].g_k[0].xl[XH-1:0]}}) & FXH) << b : {FW{1'b0}};
              a1 = (3*t+1 < SIMD) ? (~(g_tri.g_t[t].g_k[1].wf ^ {PE{{(HW-XH){1'b0}}, g_tri.g_t[t].g_k[1].xl[XH-1:0]}}) & FXH) << b : {FW{1'b0}};
              a2 = (3*t+2 < SIMD) ? (~(g_tri.g_t[t].g_k[2].wf ^ {PE{{(HW-XH){1'b0}}, g_tri.g_t[t].g_k[2].xl[XH-1:0]}}) & FXH) << b : {FW{1'b0}};
              rows_d[(R0+t)*FW +: FW]    = a0 ^ a1 ^ a2;
              rows_d[(R0+NT+t)*FW +: FW] = (((a0 & a1) | (a0 & a2) | (a1 & a2)) << 1) & M1;
            end
          end
        end
      end
      for (j = 1; j < N_PLANES; j = j + 1) begin : g_i
        localparam KI = scale(j);
        // rows of planes 1..j-1 come first
        localparam RB = 2 * NT * NP0 + SIMD * (set_bits(scale(1), 32) * ((j > 1) ? 1 : 0)
                                              + set_bits(scale(2), 32) * ((j > 2) ? 1 : 0));
        for (b = 0; b < 17; b = b + 1) begin : g_b
          if (((KI >> b) & 1) != 0) begin : g_on
            for (s = 0; s < SIMD; s = s + 1) begin : g_s
              wire [XH-1:0] xl = x[s*IB +: XH];
              for (p = 0; p < PE; p = p + 1) begin : g_p
                wire si = w[(p*SIMD+s)*WB + j];
                wire ui = w[(p*SIMD+s)*WB + N_PLANES + j - 1];
                always @* rows_d[(RB + SIMD*set_bits(KI, b) + s)*FW + p*HW +: HW]
                  = {{(HW-XH){1'b0}}, {XH{ui}} & ~({XH{si}} ^ xl)} << b;
              end
            end
          end
        end
      end
    end
  endgenerate

  // ---- stage 3: fold sum ------------------------------------------------
  wire [FW-1:0] heap_w;
  always @* heap = heap_w;
  lb_rowsum #(
    .N(NR), .W(HW), .M(PE)
  ) u_sum (
    .rows(rows2), .sum(heap_w)
  );


`endif

  // ---- stage 4: accumulate ----------------------------------------------
  // acc = (first ? init : acc) + (heap << SH), the fold first: the adder's
  // carry logic then sees a register bit, and the mux shares its LUT
  localparam DW = HW + SH;
  reg  [PE*ACC_BITS-1:0] acc4;
  reg  [PE*ACC_BITS-1:0] acc_d;

  generate
    for (p = 0; p < PE; p = p + 1) begin : g_acc
      wire [DW-1:0]       d  = {dot3[p*HW +: HW], {SH{1'b0}}};
      wire [ACC_BITS-1:0] de;
      if (DW < ACC_BITS) begin : g_ext
        assign de = {{(ACC_BITS-DW){1'b0}}, d};
      end else begin : g_cut
        assign de = d[ACC_BITS-1:0];
        if (DW > ACC_BITS) begin : g_drop
          wire unused_hi = &{1'b0, d[DW-1:ACC_BITS]};
        end
      end
      always @* acc_d[p*ACC_BITS +: ACC_BITS] = de + (first3 ? init[p*ACC_BITS +: ACC_BITS]
                                                              : acc4[p*ACC_BITS +: ACC_BITS]);
    end
  endgenerate

  always @(posedge clk) begin
    if (en && v3) acc4 <= acc_d;
  end

  assign acc = acc4;

endmodule
