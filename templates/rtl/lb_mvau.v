`timescale 1ns/1ps
// lb_mvau -- matrix-vector(-activation) unit: y = W x, then optionally the
// multi-threshold activation, folded onto PE x SIMD lanes.
//
// Numbers (kinds: 0 bipolar = one bit b for the value 2b-1, 1 unsigned,
// 2 signed two's complement). Element i of any word sits at [i*bits +: bits].
//
// Folding: NF = MH/PE neuron folds, SF = MW/SIMD synapse folds.
//   input : SF beats of SIMD elements per frame (inputs in order);
//   output: NF beats of PE elements per frame, beat nf = channels
//           nf*PE .. nf*PE+PE-1; elements are OUT_BITS-bit levels when
//           USE_THRESH, else signed ACC_BITS accumulators.
//   weight ROM  (WEIGHT_FILE): depth NF*SF, address nf*SF+sf, element
//           p*SIMD+s = code of W[nf*PE+p][sf*SIMD+s].
//   threshold ROM (THRESH_FILE): depth NF, element p*N_THRESH+j (ACC_BITS) =
//           threshold j of channel nf*PE+p; bit PE*N_THRESH*ACC_BITS+p = its
//           invert flag.
// The input vector streams in during neuron fold 0 and is kept in a buffer
// (SF words) for folds 1..NF-1. One (nf, sf) step issues per cycle, so a
// frame takes exactly NF*SF cycles when input is available and the output
// is accepted (initiation interval 1, frames back to back).
//
// Processing element (PE_KIND):
//   0 xnor  : bipolar x bipolar, fold sum = 2*popcount(~(w^x)) - SIMD
//   1 addsub: bipolar weight x uint/int activation, +x or -x
//   2 mac   : (signed) integer weight x any activation, multiply-add
//
// Pipeline (stall-all: every stage advances together on `en`):
//   I  issue     fold counters, weight ROM / input buffer read address
//   1  fetch     weight word, activation word (stream register or buffer)
//   2  product   per lane product (xnor bit / +-x / w*x), registered
//   3  reduce    adder tree per PE, registered; threshold ROM read
//   4  acc       accumulator per PE, complete on the last synapse fold
//   5  activate  multi-threshold compare (or raw accumulator), registered
//   then a skid buffer to the output, so m_axis_tready only reaches `en`
//   through a register and s_axis_tready depends on state only.
// Partial sums are kept modulo 2^ACC_BITS, which is exact because the
// complete dot product fits ACC_BITS by construction.
module lb_mvau #(
  parameter MW          = 4,
  parameter MH          = 4,
  parameter PE          = 1,
  parameter SIMD        = 1,
  parameter WEIGHT_BITS = 1,
  parameter W_KIND      = 0,   // 0 bipolar, 1 unsigned, 2 signed
  parameter IN_BITS     = 1,
  parameter IN_KIND     = 0,   // 0 bipolar, 1 unsigned, 2 signed
  parameter ACC_BITS    = 8,
  parameter PE_KIND     = 0,   // 0 xnor, 1 addsub, 2 mac
  parameter USE_THRESH  = 0,   // 1: hidden layer with thresholds
  parameter N_THRESH    = 1,   // thresholds per channel (USE_THRESH)
  parameter OUT_BITS    = 1,   // output level bits (USE_THRESH)
  parameter WEIGHT_FILE = "",    // $readmemh file, bare name
  parameter THRESH_FILE = ""     // $readmemh file, bare name (USE_THRESH)
) (
  input  wire                     clk,
  input  wire                     rst_n,
  input  wire [SIMD*IN_BITS-1:0]  s_axis_tdata,
  input  wire                     s_axis_tvalid,
  output wire                     s_axis_tready,
  output wire [PE*((USE_THRESH != 0) ? OUT_BITS : ACC_BITS)-1:0] m_axis_tdata,
  output wire                     m_axis_tvalid,
  input  wire                     m_axis_tready,
  output wire                     m_axis_tlast
);
  // ---- parameter checks: a failing check instantiates a module that does
  // ---- not exist, so elaboration stops with its name as the message.
  generate
    if (MW < 1 || MH < 1 || PE < 1 || SIMD < 1) begin : g_err_size
      lb_mvau_error_MW_MH_PE_SIMD_must_be_positive u_err ();
    end
    if (MH % PE != 0) begin : g_err_pe
      lb_mvau_error_PE_must_divide_MH u_err ();
    end
    if (MW % SIMD != 0) begin : g_err_simd
      lb_mvau_error_SIMD_must_divide_MW u_err ();
    end
    if (W_KIND < 0 || W_KIND > 2 || IN_KIND < 0 || IN_KIND > 2) begin : g_err_kind
      lb_mvau_error_W_KIND_and_IN_KIND_must_be_0_1_or_2 u_err ();
    end
    if ((W_KIND == 0 && WEIGHT_BITS != 1) || (IN_KIND == 0 && IN_BITS != 1)) begin : g_err_bipolar
      lb_mvau_error_bipolar_values_are_1_bit u_err ();
    end
    if (WEIGHT_BITS < 1 || IN_BITS < 1 || (W_KIND == 2 && WEIGHT_BITS < 2) || (IN_KIND == 2 && IN_BITS < 2)) begin : g_err_bits
      lb_mvau_error_bad_WEIGHT_BITS_or_IN_BITS u_err ();
    end
    if (PE_KIND < 0 || PE_KIND > 2) begin : g_err_pe_kind
      lb_mvau_error_PE_KIND_must_be_0_xnor_1_addsub_2_mac u_err ();
    end
    if (PE_KIND == 0 && (W_KIND != 0 || IN_KIND != 0)) begin : g_err_xnor
      lb_mvau_error_xnor_needs_bipolar_weights_and_inputs u_err ();
    end
    if (PE_KIND == 1 && W_KIND != 0) begin : g_err_addsub
      lb_mvau_error_addsub_needs_bipolar_weights u_err ();
    end
    if (ACC_BITS < 2) begin : g_err_acc
      lb_mvau_error_ACC_BITS_must_be_at_least_2 u_err ();
    end
    if (USE_THRESH != 0 && (N_THRESH < 1 || OUT_BITS < 1 || N_THRESH > (1 << OUT_BITS) - 1)) begin : g_err_thresh
      lb_mvau_error_need_1_le_N_THRESH_le_2_pow_OUT_BITS_minus_1 u_err ();
    end
  endgenerate

  // ---- derived sizes ---------------------------------------------------
  localparam NF   = MH / PE;
  localparam SF   = MW / SIMD;
  localparam NFW  = (NF > 1) ? $clog2(NF) : 1;
  localparam SFW  = (SF > 1) ? $clog2(SF) : 1;
  localparam WD   = NF * SF;                         // weight ROM depth
  localparam WAW  = (WD > 1) ? $clog2(WD) : 1;
  localparam IW   = SIMD * IN_BITS;                  // input beat
  localparam WW   = PE * SIMD * WEIGHT_BITS;         // weight word
  localparam OE   = (USE_THRESH != 0) ? OUT_BITS : ACC_BITS;
  localparam OW   = PE * OE;                         // output beat
  // value widths: bipolar -> 2-bit signed +-1, unsigned k -> k+1 signed
  localparam XV   = (IN_KIND == 0) ? 2 : (IN_KIND == 1) ? IN_BITS + 1 : IN_BITS;
  localparam WV   = (W_KIND == 0) ? 2 : (W_KIND == 1) ? WEIGHT_BITS + 1 : WEIGHT_BITS;
  // product width per lane (xnor: one bit)
  localparam PW   = (PE_KIND == 0) ? 1 : (PE_KIND == 1) ? XV + 1 : WV + XV;
  // fold sum: popcount width (xnor) and the exact signed width of the sum
  localparam PCW  = $clog2(SIMD + 1);
  localparam DWN  = (PE_KIND == 0) ? PCW + 1 : PW + $clog2(SIMD);
  localparam DW   = (DWN < ACC_BITS) ? DWN : ACC_BITS;
  localparam TW   = PE * (N_THRESH * ACC_BITS + 1);  // threshold word

  // sized constants (part-selects of integers keep lint width-clean)
  localparam integer   NF_LAST_I = NF - 1;
  localparam integer   SF_LAST_I = SF - 1;
  localparam integer   WA_LAST_I = WD - 1;
  localparam integer   SIMD_I    = SIMD;
  localparam [NFW-1:0] NF_LAST   = NF_LAST_I[NFW-1:0];
  localparam [SFW-1:0] SF_LAST   = SF_LAST_I[SFW-1:0];
  localparam [WAW-1:0] WA_LAST   = WA_LAST_I[WAW-1:0];
  localparam [PCW:0]   SIMD_C    = SIMD_I[PCW:0];

  // ---- pipeline control ------------------------------------------------
  wire en;                         // all stages advance
  wire out_ready;                  // skid buffer can take a beat
  reg  v1, v2, v3, v4, v5;         // stage valid bits

  // ---- stage I: issue --------------------------------------------------
  reg  [NFW-1:0] nf;
  reg  [SFW-1:0] sf;
  reg  [WAW-1:0] wa;               // = nf*SF + sf
  wire in_phase = (nf == {NFW{1'b0}});
  wire issue    = in_phase ? s_axis_tvalid : 1'b1;
  wire fire     = en && issue;

  assign s_axis_tready = en && in_phase;

  always @(posedge clk) begin
    if (!rst_n) begin
      nf <= {NFW{1'b0}};
      sf <= {SFW{1'b0}};
      wa <= {WAW{1'b0}};
    end else if (fire) begin
      sf <= (sf == SF_LAST) ? {SFW{1'b0}} : sf + 1'b1;
      if (sf == SF_LAST) nf <= (nf == NF_LAST) ? {NFW{1'b0}} : nf + 1'b1;
      wa <= (wa == WA_LAST) ? {WAW{1'b0}} : wa + 1'b1;
    end
  end

  // ---- stage 1: fetch --------------------------------------------------
  reg            first1, last1, tl1, sel1;
  reg  [NFW-1:0] nf1;
  reg  [IW-1:0]  inr1;             // the beat taken from the stream
  wire [IW-1:0]  bufq1;            // the beat read back from the buffer
  wire [WW-1:0]  w1;               // weight word

  always @(posedge clk) begin
    if (en) begin
      first1 <= (sf == {SFW{1'b0}});
      last1  <= (sf == SF_LAST);
      tl1    <= (nf == NF_LAST);
      sel1   <= in_phase;
      nf1    <= nf;
      inr1   <= s_axis_tdata;
    end
  end

  lb_rom #(
    .DEPTH(WD), .WIDTH(WW), .ADDR_W(WAW), .INIT_FILE(WEIGHT_FILE)
  ) u_wrom (
    .clk(clk), .en(en), .addr(wa), .q(w1)
  );

  generate
    if (NF > 1) begin : g_buf
      // input vector buffer: written during fold 0, read during folds 1..NF-1
      reg [IW-1:0] mem [0:SF-1];
      reg [IW-1:0] q;
      always @(posedge clk) begin
        if (fire && in_phase) mem[sf] <= s_axis_tdata;
      end
      always @(posedge clk) begin
        if (en) q <= mem[sf];
      end
      assign bufq1 = q;
    end else begin : g_nobuf
      assign bufq1 = inr1;         // a single neuron fold never re-reads
    end
  endgenerate

  wire [IW-1:0] x1 = sel1 ? inr1 : bufq1;

  // ---- stage 2: products -----------------------------------------------
  // Lane L = p*SIMD + s (PE p, SIMD lane s) sits at [L*PW +: PW] and takes
  // weight code L of the ROM word. The lanes are computed in groups of four
  // consecutive lanes (the last NL % 4 lanes one by one), each group one
  // small combinational process writing its part of pd, and pd is
  // registered as one word: an event-driven simulator evaluates a group
  // once per change of its operands, and the product register (the input
  // of every adder tree) changes once per cycle.
  localparam NL = PE * SIMD;                     // lanes
  localparam NG = NL / 4;                        // groups of four lanes
  reg            first2, last2, tl2;
  reg  [NFW-1:0] nf2;
  reg  [NL*PW-1:0] pd;             // products of the fold in stage 1
  reg  [NL*PW-1:0] prod2;          // registered

  always @(posedge clk) begin
    if (en) begin
      first2 <= first1;
      last2  <= last1;
      tl2    <= tl1;
      nf2    <= nf1;
      prod2  <= pd;
    end
  end

  genvar p, s, q;
  generate
    if (PE_KIND == 0) begin : g_xnor
      for (p = 0; p < PE; p = p + 1) begin : g_pe
        always @* pd[p*SIMD +: SIMD] = ~(w1[p*SIMD +: SIMD] ^ x1);
      end
    end else begin : g_arith
      localparam [PW-1:0] ONE = 1;
      localparam [0:0]    SW  = (W_KIND == 2) ? 1'b1 : 1'b0;  // signed weights
      localparam          WB  = WEIGHT_BITS;
      // activation values, PW-bit signed, one per SIMD lane s (and -x when
      // the weights are bipolar); continuous assignments, so they settle
      // before any lane group runs
      for (s = 0; s < SIMD; s = s + 1) begin : g_x
        wire [IN_BITS-1:0] c = x1[s*IN_BITS +: IN_BITS];
        wire [PW-1:0]      xe;
        if (IN_KIND == 0) begin : g_bip
          assign xe = c[0] ? ONE : {PW{1'b1}};
        end else if (IN_KIND == 1) begin : g_uint
          assign xe = {{(PW-IN_BITS){1'b0}}, c};
        end else begin : g_int
          assign xe = {{(PW-IN_BITS){c[IN_BITS-1]}}, c};
        end
        if (PE_KIND == 1) begin : g_neg
          wire [PW-1:0] xn = {PW{1'b0}} - xe;
        end
      end
      // addsub: weight bit 1 is +1: x; bit 0 is -1: -x.
      // mac: the weight as a PW-bit signed value times x; both operands are
      // PW-bit signed, so the low PW bits of the product are the exact
      // signed product.
      for (q = 0; q < NG + NL % 4; q = q + 1) begin : g_q
        localparam L = (q < NG) ? 4*q : 4*NG + (q - NG);  // first lane
        localparam G = (q < NG) ? 4 : 1;                  // lanes
        wire [G*WB-1:0] wg = w1[L*WB +: G*WB];            // their weight codes
        if (PE_KIND == 1 && G == 4) begin : g_addsub4
          always @* pd[L*PW +: 4*PW] = {
            wg[3] ? g_x[(L+3)%SIMD].xe : g_x[(L+3)%SIMD].g_neg.xn,
            wg[2] ? g_x[(L+2)%SIMD].xe : g_x[(L+2)%SIMD].g_neg.xn,
            wg[1] ? g_x[(L+1)%SIMD].xe : g_x[(L+1)%SIMD].g_neg.xn,
            wg[0] ? g_x[L%SIMD].xe     : g_x[L%SIMD].g_neg.xn};
        end else if (PE_KIND == 1) begin : g_addsub1
          always @* pd[L*PW +: PW] = wg[0] ? g_x[L%SIMD].xe : g_x[L%SIMD].g_neg.xn;
        end else if (W_KIND == 0 && G == 4) begin : g_mac_bip4
          // bipolar weight code b is the value 2b-1
          always @* pd[L*PW +: 4*PW] = {
            {{(PW-1){~wg[3]}}, 1'b1} * g_x[(L+3)%SIMD].xe,
            {{(PW-1){~wg[2]}}, 1'b1} * g_x[(L+2)%SIMD].xe,
            {{(PW-1){~wg[1]}}, 1'b1} * g_x[(L+1)%SIMD].xe,
            {{(PW-1){~wg[0]}}, 1'b1} * g_x[L%SIMD].xe};
        end else if (W_KIND == 0) begin : g_mac_bip1
          always @* pd[L*PW +: PW] = {{(PW-1){~wg[0]}}, 1'b1} * g_x[L%SIMD].xe;
        end else if (G == 4) begin : g_mac4
          always @* pd[L*PW +: 4*PW] = {
            {{(PW-WB){SW & wg[4*WB-1]}}, wg[3*WB +: WB]} * g_x[(L+3)%SIMD].xe,
            {{(PW-WB){SW & wg[3*WB-1]}}, wg[2*WB +: WB]} * g_x[(L+2)%SIMD].xe,
            {{(PW-WB){SW & wg[2*WB-1]}}, wg[WB +: WB]}   * g_x[(L+1)%SIMD].xe,
            {{(PW-WB){SW & wg[WB-1]}},   wg[0 +: WB]}    * g_x[L%SIMD].xe};
        end else begin : g_mac1
          always @* pd[L*PW +: PW] = {{(PW-WB){SW & wg[WB-1]}}, wg} * g_x[L%SIMD].xe;
        end
      end
    end
  endgenerate

  // ---- stage 3: reduce (adder tree per PE) ------------------------------
  // Per-PE results are gathered into one word by a small process per PE
  // (here and in stages 4 and 5) and registered as one word, so that every
  // consumer of a stage register sees one change per cycle.
  reg            first3, last3, tl3;
  reg  [NFW-1:0] nf3;
  reg  [PE*DW-1:0] dotc;           // fold sums (combinational)
  reg  [PE*DW-1:0] dot3;           // registered

  always @(posedge clk) begin
    if (en) begin
      first3 <= first2;
      last3  <= last2;
      tl3    <= tl2;
      nf3    <= nf2;
    end
  end

  generate
    for (p = 0; p < PE; p = p + 1) begin : g_red
      wire [DW-1:0] dot;
      if (PE_KIND == 0) begin : g_pop
        wire [PCW-1:0] pc;
        lb_adder_tree #(
          .N(SIMD), .IN_W(1), .OUT_W(PCW), .IN_SIGNED(0)
        ) u_tree (
          .in(prod2[p*SIMD +: SIMD]), .sum(pc)
        );
        // 2*popcount - SIMD, exact in PCW+1 signed bits
        wire [PCW:0] d = {pc, 1'b0} - SIMD_C;
        if (DW > PCW) begin : g_full
          assign dot = d;
        end else begin : g_cut
          // ACC_BITS narrower than the fold sum: keep it modulo 2^ACC_BITS
          assign dot = d[DW-1:0];
          wire unused_hi = &{1'b0, d[PCW:DW]};
        end
      end else begin : g_sum
        lb_adder_tree #(
          .N(SIMD), .IN_W(PW), .OUT_W(DW), .IN_SIGNED(1)
        ) u_tree (
          .in(prod2[p*SIMD*PW +: SIMD*PW]), .sum(dot)
        );
      end
      always @* dotc[p*DW +: DW] = dot;
    end
  endgenerate

  always @(posedge clk) begin
    if (en) dot3 <= dotc;
  end

  // ---- stage 4: accumulate ---------------------------------------------
  reg                    tl4;
  reg  [PE*ACC_BITS-1:0] acc4;     // accumulators, channel p at [p*ACC_BITS +: ACC_BITS]
  reg  [PE*ACC_BITS-1:0] acc_d;    // their next value, one process per channel

  generate
    for (p = 0; p < PE; p = p + 1) begin : g_acc
      wire [DW-1:0]       d = dot3[p*DW +: DW];
      wire [ACC_BITS-1:0] a = acc4[p*ACC_BITS +: ACC_BITS];
      if (DW < ACC_BITS) begin : g_ext
        always @* acc_d[p*ACC_BITS +: ACC_BITS] = first3 ? {{(ACC_BITS-DW){d[DW-1]}}, d}
                                                         : a + {{(ACC_BITS-DW){d[DW-1]}}, d};
      end else begin : g_same
        always @* acc_d[p*ACC_BITS +: ACC_BITS] = first3 ? d : a + d;
      end
    end
  endgenerate

  always @(posedge clk) begin
    if (en && v3) acc4 <= acc_d;
  end

  always @(posedge clk) begin
    if (en) tl4 <= tl3;
  end

  // ---- stage 5: activate -----------------------------------------------
  reg           tl5;
  wire [OW-1:0] out5;

  always @(posedge clk) begin
    if (en) tl5 <= tl4;
  end

  generate
    if (USE_THRESH != 0) begin : g_thr
      wire [TW-1:0] tq4;           // thresholds of the fold in stage 4
      reg  [OW-1:0] levels;        // activation of every channel (combinational)
      lb_rom #(
        .DEPTH(NF), .WIDTH(TW), .ADDR_W(NFW), .INIT_FILE(THRESH_FILE)
      ) u_trom (
        .clk(clk), .en(en), .addr(nf3), .q(tq4)
      );
      for (p = 0; p < PE; p = p + 1) begin : g_pe
        wire [OUT_BITS-1:0] level;
        lb_thresh #(
          .ACC_BITS(ACC_BITS), .N_THRESH(N_THRESH), .OUT_BITS(OUT_BITS)
        ) u_thresh (
          .acc(acc4[p*ACC_BITS +: ACC_BITS]),
          .thr(tq4[p*N_THRESH*ACC_BITS +: N_THRESH*ACC_BITS]),
          .inv(tq4[PE*N_THRESH*ACC_BITS + p]),
          .level(level)
        );
        always @* levels[p*OUT_BITS +: OUT_BITS] = level;
      end
      reg [OW-1:0] r;
      always @(posedge clk) begin
        if (en) r <= levels;
      end
      assign out5 = r;
    end else begin : g_raw
      reg [OW-1:0] r;
      always @(posedge clk) begin
        if (en) r <= acc4;
      end
      assign out5 = r;
      // the threshold ROM address is not needed without thresholds
      wire unused_nf3 = &{1'b0, nf3};
    end
  endgenerate

  // ---- valid bits: shift on en; stage 4 holds a result only after the
  // ---- last synapse fold --------------------------------------------------
  always @(posedge clk) begin
    if (!rst_n) begin
      v1 <= 1'b0;
      v2 <= 1'b0;
      v3 <= 1'b0;
      v4 <= 1'b0;
      v5 <= 1'b0;
    end else if (en) begin
      v1 <= issue;
      v2 <= v1;
      v3 <= v2;
      v4 <= v3 && last3;
      v5 <= v4;
    end
  end

  assign en = !v5 || out_ready;

  // ---- output skid buffer ----------------------------------------------
  wire [OW:0] m_data;
  lb_axis_skid #(
    .WIDTH(OW + 1)
  ) u_skid (
    .clk(clk), .rst_n(rst_n),
    .s_axis_tdata({tl5, out5}), .s_axis_tvalid(v5), .s_axis_tready(out_ready),
    .m_axis_tdata(m_data), .m_axis_tvalid(m_axis_tvalid), .m_axis_tready(m_axis_tready)
  );
  assign m_axis_tdata = m_data[OW-1:0];
  assign m_axis_tlast = m_data[OW];
endmodule
