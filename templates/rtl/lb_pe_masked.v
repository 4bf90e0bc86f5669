`timescale 1ns/1ps
// lb_pe_masked -- processing element for ternary weights x any input
// (PE_KIND 5; weight code = 2-bit two's complement: 00 = 0, 01 = +1,
// 11 = -1, so bit 0 says nonzero and bit 1 negative; 10 is no code and
// reads as 0). Masked add/subtract, no multiplier: per lane and input bit j
// nz & (neg ^ x_j) at 2^j, i.e. 0 where w = 0, x where w = +1 and
// ~x = -x-1 where w = -1 (the -1s, and for a signed x the complemented top
// bit of every used lane, go to the caller's offset). A bipolar x is its bit
// x_b = (x+1)/2 and the same formula is the masked xnor: w*x = nz ?
// 2*xnor(sign, x_b) - 1 : 0 (the fold is twice the heap sum, the -1 of
// every used lane the caller's offset).
//
// Each lane is one heap row of XH bits, each bit a function of three
// operand bits (nz, neg, x_j). A full adder over three lanes, as in
// lb_pe_addsub, would see nine operand bits per output bit (no longer one
// LUT6), so the rows go to the counter tree as they are.
//
// Ports, parameters and BEHAVIORAL are those of every lb_pe_* core; the
// registers and the reduction to fold sums are lb_pe_reduce (see there).
module lb_pe_masked #(
  parameter PE           = 1,
  parameter SIMD         = 1,
  parameter WEIGHT_BITS  = 2,
  parameter W_KIND       = 5,
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
  localparam LB = XH;                                // bits of a lane's heap value
  localparam LW = LB;
  localparam NR = SIMD;                              // heap rows: one per lane
  localparam [LW-1:0] ONE  = 1;
  localparam [LW-1:0] TOPX = (IN_KIND == 2) ? (ONE << (XH - 1)) : {LW{1'b0}};

  // word-level lane value: by cases of the code, the signed top bit complemented
  function [LW-1:0] lane;
    input [WB-1:0] c;
    input [IB-1:0] xv;
    reg   [LW-1:0] xh;
    begin
      xh = xv[XH-1:0] ^ TOPX;
      case (c[1:0])
        2'b01:   lane = xh;                // +1: x
        2'b11:   lane = ~xh;               // -1: ~x = -x-1
        default: lane = {LW{1'b0}};        // 0 (and the non-code 10)
      endcase
    end
  endfunction

  // code bit b of lane l in every PE field (XH times, low bits; zero when
  // l >= SIMD). A function of the whole weight word: a process that reads
  // it wakes once per new word, not once per lane and PE.
  function [FW-1:0] wf;
    input [PE*SIMD*WB-1:0] ww;
    input [31:0]           l;
    input [31:0]           b;
    integer p;
    begin
      wf = {FW{1'b0}};
      if (l < SIMD)
        for (p = 0; p < PE; p = p + 1) wf[p*HW +: XH] = {XH{ww[(p*SIMD + l)*WB + b]}};
    end
  endfunction

  // lane l's input bits as the heap sees them (the signed top bit
  // complemented) in every PE field; a function of the whole input beat
  function [FW-1:0] xf;
    input [SIMD*IB-1:0] xx;
    input [31:0]        l;
    integer p;
    begin
      xf = {FW{1'b0}};
      if (l < SIMD)
        for (p = 0; p < PE; p = p + 1) xf[p*HW +: XH] = xx[l*IB +: XH] ^ TOPX;
    end
  endfunction

  // ---- parameter checks: a failing check instantiates a module that does
  // ---- not exist, so elaboration stops with its name as the message.
  generate
    if (PE < 1 || SIMD < 1 || WB < 1 || IB < 1 || HW < 2 || HW < LB) begin : g_err_size
      lb_pe_masked_error_sizes_must_be_positive_and_HW_hold_a_lane u_err ();
    end
    if (W_KIND != 5 || WB != 2 || IN_KIND < 0 || IN_KIND > 2 || (IN_KIND == 0 && IB != 1)
        || (IN_KIND == 2 && IB < 2)) begin : g_err_kind
      lb_pe_masked_error_needs_2_bit_ternary_weights_and_bipolar_uint_or_int_inputs u_err ();
    end
    if (BEHAVIORAL != 0 && BEHAVIORAL != 1) begin : g_err_behavioral
      lb_pe_masked_error_BEHAVIORAL_must_be_0_or_1 u_err ();
    end
  endgenerate

  genvar q, l;

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
      // ---- bit heap: row l = lane l of every PE, nz & (neg ^ x), the signed top bit complemented
      assign hv_d = {NL*LW{1'b0}};
      for (l = 0; l < SIMD; l = l + 1) begin : g_l
        always @* rows_d[l*FW +: FW] = wf(w, l, 0) & (wf(w, l, 1) ^ xf(x, l));
      end
    end
  endgenerate
endmodule
