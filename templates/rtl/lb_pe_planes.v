`timescale 1ns/1ps
// lb_pe_planes -- processing element for hetero weights (PE_KIND 4;
// N_PLANES bipolar planes: bits [0,N) plane signs s_i, bits [N,2N-1) the
// masks u_1..u_{N-1}, u_0 = 1; value = sum_i u_i * k_i * (2 s_i - 1),
// k_i = PLANE_SCALES[32*i +: 32]), unsigned or bipolar inputs: per plane i
// and set bit b of k_i the masked xnor u_i & xnor(s_i, x_j) at 2^(j+b)
// (the caller's offset takes the complemented lanes). Bipolar x is the
// 1-bit unsigned x_b = (x+1)/2: w*x = 2*w*x_b - w (the fold is twice the
// heap sum). Plane 0 (always used) is compressed three lanes at a time by
// full adders right away (each output bit one LUT6 over the six operand
// bits), one copy per set bit of k_0; planes 1..N-1 give one row per lane
// and set bit.
//
// Ports, parameters and BEHAVIORAL are those of every lb_pe_* core; the
// registers and the reduction to fold sums are lb_pe_reduce (see there).
module lb_pe_planes #(
  parameter PE           = 1,
  parameter SIMD         = 1,
  parameter WEIGHT_BITS  = 1,
  parameter W_KIND       = 4,
  parameter IN_BITS      = 1,
  parameter IN_KIND      = 1,
  parameter N_PLANES     = 1,
  parameter [127:0] PLANE_SCALES = 128'd1,
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
  // k_i (0 for i >= N_PLANES)
  function integer scale;
    input [31:0] i;
    begin
      scale = (i < N_PLANES) ? PLANE_SCALES[32*i +: 32] : 0;
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

  // number of set bits of k below bit `below` -- to place the rows of
  // (plane, bit) one after another
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

  localparam LB  = XH + bitlen(sum_scales(0));       // bits of a lane's heap value
  localparam LW  = (LB < HW) ? LB : HW;
  localparam NP0 = set_bits(scale(0), 32);            // plane 0 set bits
  localparam NPR = set_bits(scale(1), 32) + set_bits(scale(2), 32) + set_bits(scale(3), 32);
  localparam NR  = 2 * NT * NP0 + SIMD * NPR;         // heap rows

  // word-level lane value: sum over the used planes of k_i * xnor(s_i, x)
  function [LW-1:0] lane;
    input [WB-1:0] c;
    input [IB-1:0] xv;
    reg   [63:0]   v, xn;
    integer i;
    begin
      v = 64'd0;
      for (i = 0; i < N_PLANES; i = i + 1) begin
        xn = {{(64-XH){1'b0}}, ~({XH{c[i]}} ^ xv[XH-1:0])};
        if (i == 0 || c[N_PLANES + i - 1]) v = v + scale(i) * xn;
      end
      lane = v[LW-1:0];
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

  // weight field of lane l in every PE field (plane 0's sign bit, XH times, low bits;
  // zero when l >= SIMD). A function of the whole weight word: a process
  // that reads it wakes once per new word, not once per lane and PE.
  function [FW-1:0] wf;
    input [PE*SIMD*WB-1:0] ww;
    input [31:0]           l;
    integer p;
    begin
      wf = {FW{1'b0}};
      if (l < SIMD)
        for (p = 0; p < PE; p = p + 1) wf[p*HW +: XH] = {XH{ww[(p*SIMD + l)*WB]}};
    end
  endfunction

  // ---- parameter checks: a failing check instantiates a module that does
  // ---- not exist, so elaboration stops with its name as the message.
  generate
    if (PE < 1 || SIMD < 1 || WB < 1 || IB < 1 || HW < 2 || HW < LB) begin : g_err_size
      lb_pe_planes_error_sizes_must_be_positive_and_HW_hold_a_lane u_err ();
    end
    if (W_KIND != 4 || N_PLANES < 1 || N_PLANES > 4 || WB != 2*N_PLANES - 1 || (IN_KIND != 0 && IN_KIND != 1) || (XB != 0 && IB != 1)) begin : g_err_kind
      lb_pe_planes_error_needs_hetero_weights_of_2N_minus_1_bits_N_1_to_4_and_bipolar_or_unsigned_inputs u_err ();
    end
    if (BEHAVIORAL != 0 && BEHAVIORAL != 1) begin : g_err_behavioral
      lb_pe_planes_error_BEHAVIORAL_must_be_0_or_1 u_err ();
    end
    if (scale(0) < 1 || (N_PLANES > 1 && scale(1) < 1) || (N_PLANES > 2 && scale(2) < 1)
        || (N_PLANES > 3 && scale(3) < 1) || scale(0) > 131071 || scale(1) > 131071
        || scale(2) > 131071 || scale(3) > 131071) begin : g_err_scales
      lb_pe_planes_error_PLANE_SCALES_must_be_1_to_65536 u_err ();
    end
  endgenerate

  genvar p, q, t, j, b, s;

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
      // plane 0 (always used): xnor(s_0, x_j), three lanes at a time, one
      // copy per set bit of k_0; planes 1..N-1: u_i & xnor(s_i, x_j) per lane
      localparam K0 = scale(0);
      for (b = 0; b < 17; b = b + 1) begin : g_b0
        if (((K0 >> b) & 1) != 0) begin : g_on
          localparam R0 = 2 * NT * set_bits(K0, b);      // first row of this copy
          for (t = 0; t < NT; t = t + 1) begin : g_t
            localparam L0 = 3*t, L1 = (3*t+1 < SIMD) ? 3*t+1 : 0, L2 = (3*t+2 < SIMD) ? 3*t+2 : 0;
            reg [FW-1:0] a0, a1, a2;
            always @* begin
              a0 = (3*t   < SIMD) ? (~(wf(w, 3*t+0) ^ {PE{{(HW-XH){1'b0}}, x[L0*IB +: XH]}}) & FXH) << b : {FW{1'b0}};
              a1 = (3*t+1 < SIMD) ? (~(wf(w, 3*t+1) ^ {PE{{(HW-XH){1'b0}}, x[L1*IB +: XH]}}) & FXH) << b : {FW{1'b0}};
              a2 = (3*t+2 < SIMD) ? (~(wf(w, 3*t+2) ^ {PE{{(HW-XH){1'b0}}, x[L2*IB +: XH]}}) & FXH) << b : {FW{1'b0}};
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
endmodule
