`timescale 1ns/1ps
// lb_mvau -- matrix-vector(-activation) unit: y = W x, then optionally the
// multi-threshold activation, folded onto PE x SIMD lanes.
//
// Numbers (kinds): 0 bipolar = one bit b for the value 2b-1, 1 unsigned,
// 2 signed two's complement, 3 log2 (weights: sign bit on top + exponent
// field f, f = 0 is 0, else (-1)^sign * 2^(f-1)), 4 hetero (weights:
// N_PLANES bipolar planes with integer scales PLANE_SCALES, 32 bits per
// plane, plane 0 lowest; code = plane signs, then the masks of planes
// 1..N-1). Element i of any word sits at [i*bits +: bits].
//
// Folding: NF = MH/PE neuron folds, SF = MW/SIMD synapse folds.
//   input : SF beats of SIMD elements per frame (inputs in order);
//   output: NF beats of PE elements per frame, beat nf = channels
//           nf*PE .. nf*PE+PE-1; elements are OUT_BITS-bit levels when
//           USE_THRESH, else signed ACC_BITS accumulators.
//   weight ROM  (WEIGHT_FILE): depth NF*SF, address nf*SF+sf, element
//           p*SIMD+s = code of W[nf*PE+p][sf*SIMD+s]. With WEIGHT_HUFF the
//           same words come from Huffman-coded streams instead, one per
//           element (lb_huff_weights, parameters HUFF_*; WEIGHT_FILE then
//           names lane 0's stream ROM): an issue also waits for the decoders,
//           and w_err rises (sticky) on a stream that does not decode.
//   threshold ROM (THRESH_FILE): depth NF, element p*N_THRESH+j (ACC_BITS) =
//           threshold j of channel nf*PE+p; bit PE*N_THRESH*ACC_BITS+p = its
//           invert flag. With THRESH_SEARCH, the per-stage, per-PE ROMs of
//           lb_thresh_search instead (THRESH_FILE names stage 0 of PE 0).
//   initial accumulators: ACC_INIT (every channel), or, when INIT_FILE is
//           set, a ROM of depth N_CLASS << NFW, address {class, nf}, element
//           p (ACC_BITS) = channel nf*PE+p. They hold the constant part of
//           the products that lb_mvau_core's bit heaps leave out
//           (lbgen.emit.rtl.accumulator_offsets) plus, for a convolution
//           with bipolar inputs and padding, the border correction of the
//           pixel's class (lbgen.ir.padding_corrections): class =
//           ROW_CLASS[oy] * N_COL_CLASS + COL_CLASS[ox], CLASS_BITS per entry.
//
// Convolution: the engine computes PIXELS matrix-vector products per frame,
// one per output pixel (row-major, OUT_W per row), each taking its window
// vector (SF beats, from lb_swu) during its neuron fold 0; output beats are
// pixel-major, tlast on the last beat of the last pixel.
// The input vector streams in during neuron fold 0 and is kept in a buffer
// (SF words) for folds 1..NF-1. One (nf, sf) step issues per cycle, so a
// frame takes exactly NF*SF cycles when input is available and the output
// is accepted (initiation interval 1, frames back to back).
//
// Processing elements (PE_KIND, see lb_mvau_core): 0 xnor (bipolar x
// bipolar), 1 addsub (bipolar weights x k-bit), 2 mac (integer weights),
// 3 shift (log2 weights), 4 planes (hetero weights), 5 masked (ternary
// weights); one core each, lb_pe_xnor .. lb_pe_masked. BEHAVIORAL = 1 swaps the bit-level datapaths
// (the cores' heaps, lb_thresh's chunked comparators; the default 0, what
// synthesis builds) for word-level models with the same results.
//
// Pipeline (stall-all: every stage advances together on `en`):
//   I  issue     fold counters, weight ROM / input buffer address
//   1  fetch     weight word, activation word (stream or buffer)
//   2  heap      products and first counter level (lb_pe_* in lb_mvau_core)
//   3  reduce    counter tree per PE (lb_rowsum); initial accumulators read
//   4  acc       accumulators; thresholds read
//   5  activate  multi-threshold compare (or raw accumulator), registered;
//                with THRESH_SEARCH, OUT_BITS stages 5 .. 4+OUT_BITS, one
//                level bit per stage (lb_thresh_search)
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
  parameter W_KIND      = 0,   // 0 bipolar, 1 unsigned, 2 signed, 3 log2, 4 hetero, 5 ternary
  parameter IN_BITS     = 1,
  parameter IN_KIND     = 0,   // 0 bipolar, 1 unsigned, 2 signed
  parameter ACC_BITS    = 8,
  parameter PE_KIND     = 0,   // 0 xnor, 1 addsub, 2 mac, 3 shift, 4 planes, 5 masked
  parameter N_PLANES    = 1,   // hetero: planes
  parameter [127:0] PLANE_SCALES = 128'd1,  // hetero: scale of plane i at [32*i +: 32]
  parameter [63:0]  ACC_INIT = 64'd0,       // initial accumulator (low ACC_BITS bits) without INIT_FILE
  parameter USE_THRESH  = 0,   // 1: hidden layer with thresholds
  parameter N_THRESH    = 1,   // thresholds per channel (USE_THRESH)
  parameter THRESH_SEARCH = 0, // 1: binary-search threshold unit (N_THRESH = 2^OUT_BITS - 1)
  parameter OUT_BITS    = 1,   // output level bits (USE_THRESH)
  parameter WEIGHT_FILE = "",    // $readmemh file, bare name
  parameter THRESH_FILE = "",    // $readmemh file, bare name (USE_THRESH)
  parameter INIT_FILE   = "",    // $readmemh file, bare name; "" = ACC_INIT
  parameter PIXELS      = 1,     // matrix-vector products per frame (convolution: output pixels)
  parameter OUT_W       = 1,     // output pixels per row (PIXELS / OUT_W rows)
  parameter N_CLASS     = 1,     // initial-accumulator classes (INIT_FILE depth N_CLASS << NFW)
  parameter N_COL_CLASS = 1,     // column classes: class = row class * N_COL_CLASS + column class
  parameter CLASS_BITS  = 1,     // bits per ROW_CLASS / COL_CLASS entry
  parameter ROW_CLASS   = 1'b0,  // class of output row oy at [oy*CLASS_BITS +: CLASS_BITS]
  parameter COL_CLASS   = 1'b0,  // class of output column ox at [ox*CLASS_BITS +: CLASS_BITS]
  parameter WEIGHT_HUFF = 0,     // 1: weights from Huffman-coded streams (lb_huff_weights)
  parameter HUFF_L      = 1,     // lb_huff_weights' L, FW, NSYM, IXW, LJ, FIRST, BASE,
  parameter HUFF_FW     = 4,     // ORDER, KW, LANE_META (PE*SIMD lanes, WB =
  parameter HUFF_NSYM   = 1,     // WEIGHT_BITS, PASS_LEN = NF*SF)
  parameter HUFF_IXW    = 1,
  parameter HUFF_LJ     = 1'b0,
  parameter HUFF_FIRST  = 1'b0,
  parameter HUFF_BASE   = 1'b0,
  parameter HUFF_ORDER  = 1'b0,
  parameter HUFF_KW     = 1,
  parameter HUFF_META   = 96'd0,
  parameter BEHAVIORAL  = 0      // 0 bit-level datapath (synthesis), 1 word-level models (lb_mvau_core, lb_thresh)
) (
  input  wire                     clk,
  input  wire                     rst_n,
  input  wire [SIMD*IN_BITS-1:0]  s_axis_tdata,
  input  wire                     s_axis_tvalid,
  output wire                     s_axis_tready,
  output wire [PE*((USE_THRESH != 0) ? OUT_BITS : ACC_BITS)-1:0] m_axis_tdata,
  output wire                     m_axis_tvalid,
  input  wire                     m_axis_tready,
  output wire                     m_axis_tlast,
  output wire                     w_err          // Huffman stream error (sticky); 0 without WEIGHT_HUFF
);
  // ---- parameter checks: a failing check instantiates a module that does
  // ---- not exist, so elaboration stops with its name as the message.
  // ---- (lb_mvau_core checks the number formats.)
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
    if (W_KIND < 0 || W_KIND > 5 || IN_KIND < 0 || IN_KIND > 2) begin : g_err_kind
      lb_mvau_error_W_KIND_0_to_5_and_IN_KIND_0_to_2 u_err ();
    end
    if ((W_KIND == 0 && WEIGHT_BITS != 1) || (IN_KIND == 0 && IN_BITS != 1)) begin : g_err_bipolar
      lb_mvau_error_bipolar_values_are_1_bit u_err ();
    end
    if (WEIGHT_BITS < 1 || IN_BITS < 1 || (W_KIND == 2 && WEIGHT_BITS < 2) || (IN_KIND == 2 && IN_BITS < 2)
        || (W_KIND == 5 && WEIGHT_BITS != 2)) begin : g_err_bits
      lb_mvau_error_bad_WEIGHT_BITS_or_IN_BITS u_err ();
    end
    if (PE_KIND < 0 || PE_KIND > 5) begin : g_err_pe_kind
      lb_mvau_error_PE_KIND_must_be_0_xnor_1_addsub_2_mac_3_shift_4_planes_5_masked u_err ();
    end
    if (PE_KIND == 0 && (W_KIND != 0 || IN_KIND != 0)) begin : g_err_xnor
      lb_mvau_error_xnor_needs_bipolar_weights_and_inputs u_err ();
    end
    if (PE_KIND == 1 && W_KIND != 0) begin : g_err_addsub
      lb_mvau_error_addsub_needs_bipolar_weights u_err ();
    end
    if (PE_KIND == 3 && W_KIND != 3) begin : g_err_shift
      lb_mvau_error_shift_needs_log2_weights u_err ();
    end
    if (PE_KIND == 4 && W_KIND != 4) begin : g_err_planes
      lb_mvau_error_planes_needs_hetero_weights u_err ();
    end
    if ((W_KIND == 3 && PE_KIND != 3) || (W_KIND == 4 && PE_KIND != 4)) begin : g_err_wkind
      lb_mvau_error_log2_weights_need_shift_and_hetero_weights_planes u_err ();
    end
    if ((PE_KIND == 5) != (W_KIND == 5)) begin : g_err_ternary
      lb_mvau_error_ternary_weights_need_the_masked_pe_and_it_them u_err ();
    end
    if (ACC_BITS < 2 || ACC_BITS > 64) begin : g_err_acc
      lb_mvau_error_ACC_BITS_must_be_2_to_64 u_err ();
    end
    if (USE_THRESH != 0 && (N_THRESH < 1 || OUT_BITS < 1 || N_THRESH > (1 << OUT_BITS) - 1)) begin : g_err_thresh
      lb_mvau_error_need_1_le_N_THRESH_le_2_pow_OUT_BITS_minus_1 u_err ();
    end
    if (PIXELS < 1 || OUT_W < 1 || PIXELS % OUT_W != 0) begin : g_err_pixels
      lb_mvau_error_OUT_W_must_divide_PIXELS u_err ();
    end
    if (N_CLASS < 1 || N_COL_CLASS < 1 || N_CLASS % N_COL_CLASS != 0 || CLASS_BITS < 1
        || (N_CLASS > 1 && INIT_FILE == "")) begin : g_err_class
      lb_mvau_error_N_CLASS_needs_INIT_FILE_and_a_multiple_of_N_COL_CLASS u_err ();
    end
    if (USE_THRESH != 0 && THRESH_SEARCH != 0 && N_THRESH != (1 << OUT_BITS) - 1) begin : g_err_search
      lb_mvau_error_THRESH_SEARCH_needs_N_THRESH_eq_2_pow_OUT_BITS_minus_1 u_err ();
    end
  endgenerate

  // ---- derived sizes ---------------------------------------------------
  localparam NF   = MH / PE;
  localparam SF   = MW / SIMD;
  localparam NFW  = (NF > 1) ? $clog2(NF) : 1;
  localparam SFW  = (SF > 1) ? $clog2(SF) : 1;
  localparam WD   = NF * SF;                         // weight ROM depth
  localparam WAW  = (SF == 1) ? NFW : (NF == 1) ? SFW
                  : ((SF & (SF - 1)) == 0) ? NFW + SFW : $clog2(WD);
  localparam IW   = SIMD * IN_BITS;                  // input beat
  localparam WW   = PE * SIMD * WEIGHT_BITS;         // weight word
  localparam OE   = (USE_THRESH != 0) ? OUT_BITS : ACC_BITS;
  localparam OW   = PE * OE;                         // output beat
  localparam TW   = PE * (N_THRESH * ACC_BITS + 1);  // threshold word
  localparam AW   = PE * ACC_BITS;                   // accumulators
  localparam SEARCH = (USE_THRESH != 0) && (THRESH_SEARCH != 0);
  localparam OUT_H  = PIXELS / OUT_W;
  localparam OYW    = (OUT_H > 1) ? $clog2(OUT_H) : 1;
  localparam OXW    = (OUT_W > 1) ? $clog2(OUT_W) : 1;
  localparam CW     = (N_CLASS > 1) ? $clog2(N_CLASS) : 1;  // class index bits
  localparam IAW    = CW + NFW;                             // initial-accumulator ROM address
  localparam LAT  = SEARCH ? OUT_BITS : 1;           // stages of the activation

  // sized constants (part-selects of integers keep lint width-clean)
  localparam integer   NF_LAST_I = NF - 1;
  localparam integer   SF_LAST_I = SF - 1;
  localparam integer   WA_LAST_I = WD - 1;
  localparam [NFW-1:0] NF_LAST   = NF_LAST_I[NFW-1:0];
  localparam [SFW-1:0] SF_LAST   = SF_LAST_I[SFW-1:0];
  localparam [WAW-1:0] WA_LAST   = WA_LAST_I[WAW-1:0];
  localparam integer   OY_LAST_I = OUT_H - 1;
  localparam integer   OX_LAST_I = OUT_W - 1;
  localparam [OYW-1:0] OY_LAST   = OY_LAST_I[OYW-1:0];
  localparam [OXW-1:0] OX_LAST   = OX_LAST_I[OXW-1:0];

  // ---- pipeline control ------------------------------------------------
  wire en;                         // all stages advance
  wire out_ready;                  // skid buffer can take a beat
  reg  v1, v2, v3, v4;             // stage valid bits
  reg  [LAT-1:0] va;               // valid bits of the activation stages
  wire v5 = va[LAT-1];             // the last one, in front of the skid buffer

  // ---- stage I: issue --------------------------------------------------
  reg  [NFW-1:0] nf;
  reg  [SFW-1:0] sf;
  wire [WAW-1:0] wa;               // weight ROM address nf*SF + sf
  wire w_ready;                    // the weight word of (nf, sf) is there
  wire in_phase = (nf == {NFW{1'b0}});
  wire issue    = (in_phase ? s_axis_tvalid : 1'b1) && w_ready;
  wire fire     = en && issue;

  assign s_axis_tready = en && in_phase && w_ready;

  always @(posedge clk) begin
    if (!rst_n) begin
      nf <= {NFW{1'b0}};
      sf <= {SFW{1'b0}};
    end else if (fire) begin
      sf <= (sf == SF_LAST) ? {SFW{1'b0}} : sf + 1'b1;
      if (sf == SF_LAST) nf <= (nf == NF_LAST) ? {NFW{1'b0}} : nf + 1'b1;
    end
  end

  // output pixel (oy, ox) of the product being issued
  reg  [OYW-1:0] oy;
  reg  [OXW-1:0] ox;
  wire pix_end   = (sf == SF_LAST) && (nf == NF_LAST);
  wire last_pix  = (oy == OY_LAST) && (ox == OX_LAST);
  always @(posedge clk) begin
    if (!rst_n) begin
      oy <= {OYW{1'b0}};
      ox <= {OXW{1'b0}};
    end else if (fire && pix_end) begin
      ox <= (ox == OX_LAST) ? {OXW{1'b0}} : ox + 1'b1;
      if (ox == OX_LAST) oy <= (oy == OY_LAST) ? {OYW{1'b0}} : oy + 1'b1;
    end
  end

  // initial-accumulator class of the pixel
  wire [CW-1:0] cls;
  generate
    if (N_CLASS > 1) begin : g_class
      wire [CLASS_BITS-1:0] rc = ROW_CLASS[oy*CLASS_BITS +: CLASS_BITS];
      wire [CLASS_BITS-1:0] cc = COL_CLASS[ox*CLASS_BITS +: CLASS_BITS];
      localparam integer NCC_I = N_COL_CLASS;
      localparam [CW+CLASS_BITS-1:0] NCC = NCC_I[CW+CLASS_BITS-1:0];
      wire [CW+CLASS_BITS-1:0] c = {{CW{1'b0}}, rc} * NCC + {{CW{1'b0}}, cc};
      assign cls = c[CW-1:0];
      wire unused_c = &{1'b0, c[CW+CLASS_BITS-1:CW]};
    end else begin : g_noclass
      assign cls = 1'b0;
    end
  endgenerate

  generate
    if (SF == 1) begin : g_wa_nf
      assign wa = nf;              // WAW = NFW
      wire unused_sf = &{1'b0, sf};
    end else if (NF == 1) begin : g_wa_sf
      assign wa = sf;              // WAW = SFW
      wire unused_nf = &{1'b0, nf};
    end else if ((SF & (SF - 1)) == 0) begin : g_wa_cat
      assign wa = {nf, sf};        // SF a power of two: nf*SF + sf is a concatenation
    end else begin : g_wa_count
      reg [WAW-1:0] a;
      always @(posedge clk) begin
        if (!rst_n) a <= {WAW{1'b0}};
        else if (fire) a <= (a == WA_LAST) ? {WAW{1'b0}} : a + 1'b1;
      end
      assign wa = a;
    end
  endgenerate

  // ---- stage 1: fetch --------------------------------------------------
  reg            first1, last1, tl1;
  reg  [CW-1:0]  cls1, cls2;       // initial-accumulator class, stages 1 and 2
  reg  [NFW-1:0] nf1, nf2, nf3;
  reg            last2, last3, tl2, tl3, tl4;
  wire [IW-1:0]  x1;               // the beat (stream or buffer)
  wire [WW-1:0]  w1;               // weight word

  always @(posedge clk) begin
    if (en) begin
      first1 <= (sf == {SFW{1'b0}});
      last1  <= (sf == SF_LAST);
      tl1    <= (nf == NF_LAST) && last_pix;
      cls1   <= cls;
      cls2   <= cls1;
      nf1    <= nf;
      nf2    <= nf1;
      nf3    <= nf2;
      last2  <= last1;
      last3  <= last2;
      tl2    <= tl1;
      tl3    <= tl2;
      tl4    <= tl3;
    end
  end

  generate
    if (WEIGHT_HUFF != 0) begin : g_whuff
      // the decoders hold the word of the next issue; it moves to stage 1
      // like a ROM read, and the decoders move on when it issues
      wire [WW-1:0] hw;
      reg  [WW-1:0] r;
      lb_huff_weights #(
        .LANES(PE * SIMD), .L(HUFF_L), .FW(HUFF_FW), .WB(WEIGHT_BITS), .NSYM(HUFF_NSYM),
        .IXW(HUFF_IXW), .LJ(HUFF_LJ), .FIRST(HUFF_FIRST), .BASE(HUFF_BASE),
        .ORDER(HUFF_ORDER), .PASS_LEN(WD), .KW(HUFF_KW),
        .LANE_META(HUFF_META), .INIT_FILE(WEIGHT_FILE)
      ) u_whuff (
        .clk(clk), .rst_n(rst_n), .take(fire), .word(hw), .ready(w_ready), .err(w_err)
      );
      always @(posedge clk) begin
        if (en) r <= hw;
      end
      assign w1 = r;
      wire unused_wa = &{1'b0, wa};
    end else begin : g_wrom
      lb_rom #(
        .DEPTH(WD), .WIDTH(WW), .ADDR_W(WAW), .INIT_FILE(WEIGHT_FILE)
      ) u_wrom (
        .clk(clk), .en(en), .addr(wa), .q(w1)
      );
      assign w_ready = 1'b1;
      assign w_err   = 1'b0;
    end
  endgenerate

  generate
    if (NF > 1) begin : g_buf
      // input vector buffer (distributed RAM, asynchronous read): the beat
      // of fold 0 is written at issue and read back in stage 1 like the
      // beats of folds 1..NF-1, so stage 1 needs no multiplexer
      reg [IW-1:0]  mem [0:SF-1];
      reg [SFW-1:0] sf1;
      always @(posedge clk) begin
        if (fire && in_phase) mem[sf] <= s_axis_tdata;
      end
      always @(posedge clk) begin
        if (en) sf1 <= sf;
      end
      assign x1 = mem[sf1];
    end else begin : g_nobuf
      reg [IW-1:0] r;
      always @(posedge clk) begin
        if (en) r <= s_axis_tdata;   // a single neuron fold never re-reads
      end
      assign x1 = r;
    end
  endgenerate

  // ---- stages 2..4: the compute core -------------------------------------
  wire [AW-1:0] init3;             // initial accumulators of the fold in stage 3
  wire [AW-1:0] acc4;

  generate
    if (INIT_FILE != "" && N_CLASS > 1) begin : g_init_class_rom
      lb_rom #(
        .DEPTH(N_CLASS << NFW), .WIDTH(AW), .ADDR_W(IAW), .INIT_FILE(INIT_FILE)
      ) u_irom (
        .clk(clk), .en(en), .addr({cls2, nf2}), .q(init3)
      );
    end else if (INIT_FILE != "") begin : g_init_rom
      lb_rom #(
        .DEPTH(NF), .WIDTH(AW), .ADDR_W(NFW), .INIT_FILE(INIT_FILE)
      ) u_irom (
        .clk(clk), .en(en), .addr(nf2), .q(init3)
      );
      wire unused_cls = &{1'b0, cls2};
    end else begin : g_init_const
      assign init3 = {PE{ACC_INIT[ACC_BITS-1:0]}};
      wire unused_init = &{1'b0, ACC_INIT, cls2};
    end
  endgenerate

  lb_mvau_core #(
    .PE(PE), .SIMD(SIMD), .WEIGHT_BITS(WEIGHT_BITS), .W_KIND(W_KIND),
    .IN_BITS(IN_BITS), .IN_KIND(IN_KIND), .ACC_BITS(ACC_BITS), .PE_KIND(PE_KIND),
    .N_PLANES(N_PLANES), .PLANE_SCALES(PLANE_SCALES), .BEHAVIORAL(BEHAVIORAL)
  ) u_core (
    .clk(clk), .en(en), .valid(v1), .first(first1), .w(w1), .x(x1),
    .init(init3), .acc(acc4)
  );

  // ---- stages 5 .. 4+LAT: activate ----------------------------------------
  genvar p;
  reg  [LAT-1:0] tla;              // tlast through the activation stages
  wire [OW-1:0]  out5;             // registered activation of the last stage

  wire [LAT:0] tla_next = {tla, tl4};
  wire [LAT:0] va_next  = {va, v4};
  wire unused_top = &{1'b0, tla_next[LAT], va_next[LAT]};
  always @(posedge clk) begin
    if (en) tla <= tla_next[LAT-1:0];
  end

  generate
    if (SEARCH) begin : g_search
      lb_thresh_search #(
        .PE(PE), .NF(NF), .NFW(NFW), .ACC_BITS(ACC_BITS), .OUT_BITS(OUT_BITS),
        .THRESH_FILE(THRESH_FILE)
      ) u_search (
        .clk(clk), .en(en), .nf(nf3), .acc(acc4), .level(out5)
      );
    end else if (USE_THRESH != 0) begin : g_thr
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
          .ACC_BITS(ACC_BITS), .N_THRESH(N_THRESH), .OUT_BITS(OUT_BITS), .BEHAVIORAL(BEHAVIORAL)
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
      va <= {LAT{1'b0}};
    end else if (en) begin
      v1 <= issue;
      v2 <= v1;
      v3 <= v2;
      v4 <= v3 && last3;
      va <= va_next[LAT-1:0];
    end
  end

  assign en = !v5 || out_ready;

  // ---- output skid buffer ----------------------------------------------
  wire [OW:0] m_data;
  lb_axis_skid #(
    .WIDTH(OW + 1)
  ) u_skid (
    .clk(clk), .rst_n(rst_n),
    .s_axis_tdata({tla[LAT-1], out5}), .s_axis_tvalid(v5), .s_axis_tready(out_ready),
    .m_axis_tdata(m_data), .m_axis_tvalid(m_axis_tvalid), .m_axis_tready(m_axis_tready)
  );
  assign m_axis_tdata = m_data[OW-1:0];
  assign m_axis_tlast = m_data[OW];
endmodule
