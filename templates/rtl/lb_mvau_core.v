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
// sum_i u_i * k_i * (2 s_i - 1), k_i = PLANE_SCALES[32*i +: 32]), 5 ternary
// (2 bits: 00 = 0, 01 = +1, 11 = -1).
//
// Datapath: one processing-element core per PE_KIND, all with the same
// parameters and ports (w, x in; the per-PE fold sum of the beat out, one
// enabled cycle later): 0 lb_pe_xnor, 1 lb_pe_addsub, 2 lb_pe_mac,
// 3 lb_pe_shift, 4 lb_pe_planes, 5 lb_pe_masked. PE_KIND is built as
// given; it must be the kind the formats call for (bipolar weights: xnor
// with bipolar inputs, else addsub; unsigned/signed weights mac; log2
// shift; hetero planes; ternary weights the masked PE),
// else elaboration stops (lb_mvau_core_error_PE_KIND_does_not_fit_W_KIND_
// IN_KIND; the instance path g_err_fit.PE_KIND_[p].W_KIND_[w].IN_KIND_[i]
// names the values). Every kind is a bit heap: per lane the product w*x is
// a sum of bits at weights 2^c that are simple functions of the operand
// bits, plus a constant that depends on the weights only (folded into the
// caller's initial accumulator, see lbgen.emit.rtl.accumulator_offsets);
// each core's header says how. The fold of a beat is its heap sum << SH
// (SH = 1 for xnor, and for shift, planes and masked with bipolar x).
//
// BEHAVIORAL = 0 (default, what synthesis builds and every default test
// simulates) builds the cores' bit-level heaps; BEHAVIORAL = 1 their
// word-level models (the lane values as words and an adder tree per PE:
// same ports, stages and results; tests/test_pe_cores.py runs both side by
// side under Icarus and Verilator).
//
// Pipeline: 2 heap (level 1, registered, in the core), 3 fold sum
// (registered), 4 accumulate (registered).
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
  parameter [127:0] PLANE_SCALES = 128'd1,
  parameter BEHAVIORAL   = 0    // 0 bit-level heaps (synthesis), 1 word-level model
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
  localparam K  = PE_KIND;                           // the kind built
  localparam XB = (IN_KIND == 0) ? 1 : 0;            // bipolar x
  // the kind the number formats call for (lbgen.passes.pe.choose_pe)
  localparam FIT = (W_KIND == 0) ? ((IN_KIND == 0) ? 0 : 1)
                 : (W_KIND == 3) ? 3
                 : (W_KIND == 4) ? 4
                 : (W_KIND == 5) ? 5 : 2;

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

  function integer bitlen;                // bits of a value < 2^31
    input [31:0] v;
    integer b;
    begin
      bitlen = 0;
      for (b = 0; b < 31; b = b + 1) if ((v >> b) != 0) bitlen = b + 1;
    end
  endfunction

  // ---- parameter checks: a failing check instantiates a module that does
  // ---- not exist, so elaboration stops with its name as the message.
  genvar g_pk, g_wk, g_ik;
  generate
    if (PE < 1 || SIMD < 1 || WB < 1 || IB < 1 || ACC_BITS < 2) begin : g_err_size
      lb_mvau_core_error_sizes_must_be_positive u_err ();
    end
    if (W_KIND < 0 || W_KIND > 5 || IN_KIND < 0 || IN_KIND > 2) begin : g_err_kind
      lb_mvau_core_error_W_KIND_0_to_5_IN_KIND_0_to_2 u_err ();
    end
    if (PE_KIND != FIT) begin : g_err_fit
      // the generate indices carry the offending values into the instance
      // path (g_err_fit.PE_KIND_[p].W_KIND_[w].IN_KIND_[i].u_err)
      for (g_pk = PE_KIND; g_pk <= PE_KIND; g_pk = g_pk + 1) begin : PE_KIND_
        for (g_wk = W_KIND; g_wk <= W_KIND; g_wk = g_wk + 1) begin : W_KIND_
          for (g_ik = IN_KIND; g_ik <= IN_KIND; g_ik = g_ik + 1) begin : IN_KIND_
            lb_mvau_core_error_PE_KIND_does_not_fit_W_KIND_IN_KIND u_err ();
          end
        end
      end
    end
    if (PE_KIND < 0 || PE_KIND > 5) begin : g_err_pe_kind
      lb_mvau_core_error_PE_KIND_must_be_0_to_5 u_err ();
    end
    // (with a fitting PE_KIND:)
    if (K == 3 && (WB < 2 || WB > 6)) begin : g_err_shift
      lb_mvau_core_error_shift_needs_log2_weights_of_2_to_6_bits u_err ();
    end
    if (K == 4 && (N_PLANES < 1 || N_PLANES > 4 || WB != 2*N_PLANES - 1)) begin : g_err_planes
      lb_mvau_core_error_planes_needs_hetero_weights_of_2N_minus_1_bits_N_1_to_4 u_err ();
    end
    if (K == 4 && (scale(0) < 1 || (N_PLANES > 1 && scale(1) < 1) || (N_PLANES > 2 && scale(2) < 1)
                   || (N_PLANES > 3 && scale(3) < 1) || scale_bits(0) > 17)) begin : g_err_scales
      lb_mvau_core_error_PLANE_SCALES_must_be_1_to_65536 u_err ();
    end
    if (K == 5 && WB != 2) begin : g_err_ternary
      lb_mvau_core_error_ternary_weights_are_2_bits u_err ();
    end
    if ((K == 3 || K == 4) && IN_KIND == 2) begin : g_err_in
      lb_mvau_core_error_shift_and_planes_take_bipolar_or_unsigned_inputs u_err ();
    end
    if (BEHAVIORAL != 0 && BEHAVIORAL != 1) begin : g_err_behavioral
      lb_mvau_core_error_BEHAVIORAL_must_be_0_or_1 u_err ();
    end
  endgenerate

  // activation bits seen by the heap (bipolar: one bit)
  localparam XH   = (XB != 0) ? 1 : IB;
  localparam EMAX = (K == 3) ? (1 << (WB - 1)) - 2 : 0;          // largest log2 exponent
  // bits of the largest per-lane heap value
  localparam LB = (K == 0) ? 1
                : (K == 1 || K == 5) ? XH
                : (K == 2) ? ((XB != 0) ? WB + 1 : WB + XH)
                : (K == 3) ? XH + EMAX
                :            XH + bitlen(sum_scales(0));
  localparam SB = $clog2(SIMD);
  // fold heap width: SIMD * lane max < 2^(LB+SB); exact when small
  localparam HW0 = (LB + SB <= 30) ? $clog2(SIMD * ((1 << LB) - 1) + 1) : LB + SB;
  localparam HW  = (HW0 < 2) ? 2 : HW0;
  localparam SH  = (K == 0 || ((K == 3 || K == 4 || K == 5) && XB != 0)) ? 1 : 0;   // fold = heap << SH
  localparam FW  = PE * HW;                                              // fold sums, one field per PE

  // ---- stage 2 (in the core), 3: fold sums --------------------------------
  wire [FW-1:0] heap;                       // fold sums of the beat in stage 2
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

  // the core of PE_KIND (none when a check above fails)
  localparam OK = PE >= 1 && SIMD >= 1 && WB >= 1 && IB >= 1 && ACC_BITS >= 2 && PE_KIND == FIT
                  && W_KIND >= 0 && W_KIND <= 5 && IN_KIND >= 0 && IN_KIND <= 2
                  && !(K == 5 && WB != 2)
                  && !(K == 3 && (WB < 2 || WB > 6))
                  && !(K == 4 && (N_PLANES < 1 || N_PLANES > 4 || WB != 2*N_PLANES - 1))
                  && !((K == 3 || K == 4) && IN_KIND == 2);
  generate
    if (!OK) begin : g_none
      assign heap = {FW{1'b0}};
      wire unused_core = &{1'b0, w, x};
    end else if (K == 0) begin : g_xnor
      lb_pe_xnor #(
        .PE(PE), .SIMD(SIMD), .WEIGHT_BITS(WB), .W_KIND(W_KIND), .IN_BITS(IB), .IN_KIND(IN_KIND),
        .N_PLANES(N_PLANES), .PLANE_SCALES(PLANE_SCALES), .HW(HW), .BEHAVIORAL(BEHAVIORAL)
      ) u_pe (.clk(clk), .en(en), .w(w), .x(x), .sum(heap));
    end else if (K == 1) begin : g_addsub
      lb_pe_addsub #(
        .PE(PE), .SIMD(SIMD), .WEIGHT_BITS(WB), .W_KIND(W_KIND), .IN_BITS(IB), .IN_KIND(IN_KIND),
        .N_PLANES(N_PLANES), .PLANE_SCALES(PLANE_SCALES), .HW(HW), .BEHAVIORAL(BEHAVIORAL)
      ) u_pe (.clk(clk), .en(en), .w(w), .x(x), .sum(heap));
    end else if (K == 2) begin : g_mac
      lb_pe_mac #(
        .PE(PE), .SIMD(SIMD), .WEIGHT_BITS(WB), .W_KIND(W_KIND), .IN_BITS(IB), .IN_KIND(IN_KIND),
        .N_PLANES(N_PLANES), .PLANE_SCALES(PLANE_SCALES), .HW(HW), .BEHAVIORAL(BEHAVIORAL)
      ) u_pe (.clk(clk), .en(en), .w(w), .x(x), .sum(heap));
    end else if (K == 3) begin : g_shift
      lb_pe_shift #(
        .PE(PE), .SIMD(SIMD), .WEIGHT_BITS(WB), .W_KIND(W_KIND), .IN_BITS(IB), .IN_KIND(IN_KIND),
        .N_PLANES(N_PLANES), .PLANE_SCALES(PLANE_SCALES), .HW(HW), .BEHAVIORAL(BEHAVIORAL)
      ) u_pe (.clk(clk), .en(en), .w(w), .x(x), .sum(heap));
    end else if (K == 4) begin : g_planes
      lb_pe_planes #(
        .PE(PE), .SIMD(SIMD), .WEIGHT_BITS(WB), .W_KIND(W_KIND), .IN_BITS(IB), .IN_KIND(IN_KIND),
        .N_PLANES(N_PLANES), .PLANE_SCALES(PLANE_SCALES), .HW(HW), .BEHAVIORAL(BEHAVIORAL)
      ) u_pe (.clk(clk), .en(en), .w(w), .x(x), .sum(heap));
    end else begin : g_masked
      lb_pe_masked #(
        .PE(PE), .SIMD(SIMD), .WEIGHT_BITS(WB), .W_KIND(W_KIND), .IN_BITS(IB), .IN_KIND(IN_KIND),
        .N_PLANES(N_PLANES), .PLANE_SCALES(PLANE_SCALES), .HW(HW), .BEHAVIORAL(BEHAVIORAL)
      ) u_pe (.clk(clk), .en(en), .w(w), .x(x), .sum(heap));
    end
  endgenerate

  // ---- stage 4: accumulate ----------------------------------------------
  // acc = (first ? init : acc) + (heap << SH), the fold first: the adder's
  // carry logic then sees a register bit, and the mux shares its LUT
  genvar p;
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
