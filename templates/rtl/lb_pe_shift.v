`timescale 1ns/1ps
// lb_pe_shift -- processing element for log2 weights (PE_KIND 3; sign bit
// on top, exponent field f: 0 is the value 0, else (-1)^sign * 2^(f-1)),
// unsigned or bipolar inputs: per lane and PE (x ^ sign) << (f-1), zero
// when f = 0 -- a shift and a conditional complement, no multiplier
// (~x = 2^XH-1-x where negative: the caller's offset). Bipolar x is the
// 1-bit unsigned x_b = (x+1)/2: w*x = 2*w*x_b - w (the fold is twice the
// heap sum, the offset takes -sum w). Each lane is one heap row.
//
// Ports, parameters and BEHAVIORAL are those of every lb_pe_* core; the
// registers and the reduction to fold sums are lb_pe_reduce (see there).
module lb_pe_shift #(
  parameter PE           = 1,
  parameter SIMD         = 1,
  parameter WEIGHT_BITS  = 3,
  parameter W_KIND       = 3,
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
  localparam FW = PE * HW;                           // one heap row
  localparam NL = PE * SIMD;                         // lanes
  localparam EMAX = (1 << (WB - 1)) - 2;            // largest exponent
  localparam LB = XH + EMAX;                          // bits of a lane's heap value
  localparam LW = LB;
  localparam NR = SIMD;                               // heap rows
  localparam [WB-2:0] ONE_F = 1;

  // word-level lane value: (x ^ sign) << (f-1), zero when f = 0
  function [LW-1:0] lane;
    input [WB-1:0] c;
    input [IB-1:0] xv;
    begin
      lane = {LW{1'b0}};
      lane[XH-1:0] = xv[XH-1:0] ^ {XH{c[WB-1]}};
      if (c[WB-2:0] == {(WB-1){1'b0}}) lane = {LW{1'b0}};
      else lane = lane << (c[WB-2:0] - ONE_F);
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

  // ---- parameter checks: a failing check instantiates a module that does
  // ---- not exist, so elaboration stops with its name as the message.
  generate
    if (PE < 1 || SIMD < 1 || WB < 1 || IB < 1 || HW < 2 || HW < LB) begin : g_err_size
      lb_pe_shift_error_sizes_must_be_positive_and_HW_hold_a_lane u_err ();
    end
    if (W_KIND != 3 || WB < 2 || WB > 6 || (IN_KIND != 0 && IN_KIND != 1) || (XB != 0 && IB != 1)) begin : g_err_kind
      lb_pe_shift_error_needs_log2_weights_of_2_to_6_bits_and_bipolar_or_unsigned_inputs u_err ();
    end
    if (BEHAVIORAL != 0 && BEHAVIORAL != 1) begin : g_err_behavioral
      lb_pe_shift_error_BEHAVIORAL_must_be_0_or_1 u_err ();
    end
  endgenerate

  genvar p, q, s;

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

      // per lane and PE: (x ^ sign) << (f-1), zero when f = 0
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
    end
  endgenerate
endmodule
