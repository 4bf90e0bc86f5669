`timescale 1ns/1ps
// lb_topk -- streaming top-K class selection after the last layer (FINN's LabelSelect).
//
// Takes the last layer's output stream, PE elements per beat and NF beats per
// frame (class nf*PE + p in element p of beat nf, element p at [p*IN_BITS +:
// IN_BITS]), and sends, per frame, ONE beat of K class indices: element i
// (IDX_BITS wide, at [i*IDX_BITS +: IDX_BITS]) is the index of the i-th largest
// score, largest first, with tlast set. Ties go to the lowest index, as
// torch.topk / torch.argmax: classes arrive in index order and a newcomer only
// displaces a kept class whose score is strictly smaller.
//
// Score of class c (lbgen.ir.topk_terms decides, Python computes every width):
//   USE_SCALE = 1: x_c * S_c + B_c, signed, SCORE_BITS wide, exact; S_c and B_c
//                  from the ROM SCORE_FILE (word c = {B_c, S_c}, S_c in the low
//                  SCALE_BITS, both two's complement), so the order is that of
//                  the logits x_c * out_scale[c] + out_bias[c] = score / 2^E;
//   USE_SCALE = 0: x_c itself (signed accumulators if IN_SIGNED, else unsigned
//                  levels), sign- or zero-extended to SCORE_BITS.
//
// Datapath: a beat is taken into a PE-element shift register, one class per
// cycle goes through the score register (ROM read and multiply) into a sorted
// list of K (score, index) slots; the last class of a frame moves the updated
// list to the output register and empties the list in the same cycle. So the
// unit takes one class per cycle back to back (a new beat in the cycle the
// previous one's last element moves on) and never slows a pipeline whose last
// layer needs at least one cycle per class; the output beat is valid PE + 1
// cycles after the last input beat of its frame was taken. It stalls only when
// a frame is complete while the previous frame's beat still waits on m_axis.
//
// Reset (rst_n, synchronous, active low): the beat in the shift register, the
// score register, the partial list and the output beat are dropped; the next
// beat taken is beat 0 of a new frame.
module lb_topk #(
  parameter PE         = 1,     // elements per input beat
  parameter NF         = 1,     // input beats per frame; classes = PE * NF
  parameter IN_BITS    = 8,     // bits of an input element
  parameter IN_SIGNED  = 1,     // 1: two's complement accumulators, 0: unsigned levels
  parameter K          = 1,     // indices per frame, 1 <= K <= PE * NF
  parameter IDX_BITS   = 1,     // bits of an index, 2^IDX_BITS >= PE * NF
  parameter USE_SCALE  = 0,     // 1: score = x * S_c + B_c from SCORE_FILE
  parameter SCALE_BITS = 1,     // bits of S_c (USE_SCALE)
  parameter BIAS_BITS  = 1,     // bits of B_c (USE_SCALE)
  parameter SCORE_BITS = 9,     // bits of a score (holds every score exactly)
  parameter SCORE_FILE = ""     // $readmemh file of PE*NF words {B_c, S_c} (USE_SCALE)
) (
  input  wire                     clk,
  input  wire                     rst_n,
  input  wire [PE*IN_BITS-1:0]    s_axis_tdata,
  input  wire                     s_axis_tvalid,
  output wire                     s_axis_tready,
  output wire [K*IDX_BITS-1:0]    m_axis_tdata,
  output wire                     m_axis_tvalid,
  input  wire                     m_axis_tready,
  output wire                     m_axis_tlast
);
  localparam CLASSES = PE * NF;
  localparam CNT_W = (PE < 2) ? 1 : $clog2(PE + 1);

  // ---- parameter checks: name the offending values and stop -------------
  initial begin
    if (PE < 1 || NF < 1 || IN_BITS < 1 || K < 1 || IDX_BITS < 1 || SCORE_BITS < 2) begin
      $display("lb_topk: PE=%0d NF=%0d IN_BITS=%0d K=%0d IDX_BITS=%0d must be positive, SCORE_BITS=%0d >= 2",
               PE, NF, IN_BITS, K, IDX_BITS, SCORE_BITS);
      $finish;
    end
    if (K > CLASSES) begin
      $display("lb_topk: K=%0d exceeds the %0d classes (PE=%0d x NF=%0d)", K, CLASSES, PE, NF);
      $finish;
    end
    if (((CLASSES - 1) >> IDX_BITS) != 0) begin
      $display("lb_topk: IDX_BITS=%0d cannot hold class index %0d", IDX_BITS, CLASSES - 1);
      $finish;
    end
    if (USE_SCALE == 0 && SCORE_BITS < IN_BITS + 1) begin
      $display("lb_topk: SCORE_BITS=%0d < IN_BITS+1=%0d (the score is the element, sign- or zero-extended)",
               SCORE_BITS, IN_BITS + 1);
      $finish;
    end
    if (USE_SCALE != 0 && (SCALE_BITS < 2 || BIAS_BITS < 2 || SCORE_FILE == "")) begin
      $display("lb_topk: USE_SCALE needs SCALE_BITS=%0d >= 2, BIAS_BITS=%0d >= 2 and a SCORE_FILE",
               SCALE_BITS, BIAS_BITS);
      $finish;
    end
  end

  // ---- stage 0: the beat, shifted out one element per cycle ---------------
  reg  [PE*IN_BITS-1:0] buf_q;
  reg  [CNT_W-1:0]      cnt_q;       // elements of buf_q still to go
  reg  [IDX_BITS-1:0]   cls_q;       // class index of element buf_q[IN_BITS-1:0]
  wire                  adv;         // the pipeline moves this cycle
  wire                  have = (cnt_q != 0);
  wire                  take = s_axis_tvalid && s_axis_tready;
  assign s_axis_tready = (cnt_q == 0) || (cnt_q == 1 && adv);

  wire [IN_BITS-1:0]    elem = buf_q[IN_BITS-1:0];
  wire signed [IN_BITS:0] elem_x = IN_SIGNED ? {elem[IN_BITS-1], elem} : {1'b0, elem};
  wire signed [SCORE_BITS-1:0] score;

  generate
    if (USE_SCALE != 0) begin : g_scale
      reg [SCALE_BITS+BIAS_BITS-1:0] rom [0:CLASSES-1];
      initial $readmemh(SCORE_FILE, rom);
      wire [SCALE_BITS+BIAS_BITS-1:0] word = rom[cls_q];
      wire signed [SCALE_BITS-1:0] s_c = word[SCALE_BITS-1:0];
      wire signed [BIAS_BITS-1:0]  b_c = word[SCALE_BITS+BIAS_BITS-1:SCALE_BITS];
      /* verilator lint_off WIDTHEXPAND */
      wire signed [SCORE_BITS-1:0] x_w = elem_x;       // sign-extended to the score's width
      wire signed [SCORE_BITS-1:0] s_w = s_c;
      wire signed [SCORE_BITS-1:0] b_w = b_c;
      /* verilator lint_on WIDTHEXPAND */
      assign score = x_w * s_w + b_w;                  // exact: Python sized SCORE_BITS for every class
    end else begin : g_plain
      /* verilator lint_off WIDTHEXPAND */
      assign score = elem_x;                           // sign-extended (SCORE_BITS >= IN_BITS + 1)
      /* verilator lint_on WIDTHEXPAND */
    end
  endgenerate

  always @(posedge clk) begin
    if (!rst_n) begin
      cnt_q <= 0;
      cls_q <= 0;
    end else begin
      if (have && adv) begin
        buf_q <= buf_q >> IN_BITS;
        cnt_q <= cnt_q - 1'b1;
        cls_q <= (cls_q == CLASSES - 1) ? {IDX_BITS{1'b0}} : cls_q + 1'b1;
      end
      if (take) begin
        buf_q <= s_axis_tdata;
        cnt_q <= PE;
      end
    end
  end

  // ---- stage 1: the score register ----------------------------------------
  reg                         a_valid;
  reg                         a_last;
  reg signed [SCORE_BITS-1:0] a_score;
  reg [IDX_BITS-1:0]          a_idx;

  always @(posedge clk) begin
    if (!rst_n) begin
      a_valid <= 1'b0;
    end else if (adv) begin
      a_valid <= have;
      a_last  <= (cls_q == CLASSES - 1);
      a_score <= score;
      a_idx   <= cls_q;
    end
  end

  // ---- stage 2: the sorted list of K (score, index) slots -----------------
  reg  [K*SCORE_BITS-1:0] sc_q;
  reg  [K*IDX_BITS-1:0]   ix_q;
  reg  [K-1:0]            v_q;          // valid slots, always a prefix (slot 0 the largest)
  wire [K*SCORE_BITS-1:0] sc_n;
  wire [K*IDX_BITS-1:0]   ix_n;
  wire [K-1:0]            v_n;
  wire [K-1:0]            better;       // the newcomer goes at or above slot i

  genvar i;
  generate
    for (i = 0; i < K; i = i + 1) begin : g_slot
      wire signed [SCORE_BITS-1:0] s_i = sc_q[i*SCORE_BITS +: SCORE_BITS];
      assign better[i] = !v_q[i] || (a_score > s_i);     // strictly: an equal score keeps the lower index
      if (i == 0) begin : g_first
        assign sc_n[0 +: SCORE_BITS] = better[0] ? a_score : s_i;
        assign ix_n[0 +: IDX_BITS]   = better[0] ? a_idx : ix_q[0 +: IDX_BITS];
        assign v_n[0]                = better[0] ? 1'b1 : v_q[0];
      end else begin : g_next
        assign sc_n[i*SCORE_BITS +: SCORE_BITS] = !better[i] ? s_i
            : better[i-1] ? sc_q[(i-1)*SCORE_BITS +: SCORE_BITS] : a_score;
        assign ix_n[i*IDX_BITS +: IDX_BITS] = !better[i] ? ix_q[i*IDX_BITS +: IDX_BITS]
            : better[i-1] ? ix_q[(i-1)*IDX_BITS +: IDX_BITS] : a_idx;
        assign v_n[i] = !better[i] ? v_q[i] : better[i-1] ? v_q[i-1] : 1'b1;
      end
    end
  endgenerate

  // ---- output register: one beat of K indices per frame -------------------
  reg                  out_valid;
  reg [K*IDX_BITS-1:0] out_data;
  wire                 finish = a_valid && a_last;
  assign adv = !(finish && out_valid && !m_axis_tready);

  always @(posedge clk) begin
    if (!rst_n) begin
      v_q <= {K{1'b0}};
      out_valid <= 1'b0;
    end else begin
      if (out_valid && m_axis_tready) out_valid <= 1'b0;
      if (a_valid && adv) begin
        if (finish) begin
          out_data  <= ix_n;
          out_valid <= 1'b1;
          v_q       <= {K{1'b0}};
        end else begin
          v_q <= v_n;
        end
        sc_q <= sc_n;
        ix_q <= ix_n;
      end
    end
  end

  assign m_axis_tdata  = out_data;
  assign m_axis_tvalid = out_valid;
  assign m_axis_tlast  = 1'b1;
endmodule
