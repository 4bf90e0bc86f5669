`timescale 1ns/1ps
// lb_huff_lane -- one lane of a Huffman-coded weight stream: a canonical
// prefix-code decoder with its own stream ROM, one symbol per cycle.
//
// Code (canonical, lbgen.huffman.HuffmanCode): codes are sent most
// significant bit first; an l-bit prefix v is a whole code iff v < LIMIT[l]
// and no shorter prefix was one; its symbol is ORDER[BASE[l] + v - FIRST[l]].
// All L prefixes are compared at once (L comparators of L+1 bits) and the
// shortest hit wins.
//   LIMIT, FIRST: entry l (l = 1..L) at [l*(L+1) +: L+1], entry 0 unused;
//   BASE: entry l at [l*IXW +: IXW]; ORDER: symbol k at [k*WB +: WB].
//
// Stream ROM (INIT_FILE, $readmemh): DEPTH words of FW bits, stream bit i at
// bit i % FW of word i / FW. A pass is PASS_LEN symbols in N_BITS bits; the
// last word holds LAST_BITS of them (the rest is padding and never enters
// the buffer), and the ROM is read cyclically, so passes follow each other
// with no gap.
//
// Buffer: BUF_BITS = 3*FW + L bits, next stream bit at bit 0. A word is read
// whenever the word in flight and the new one both fit (the ROM has one
// registered read port), which keeps at least L bits ahead of the decoder
// at one symbol per cycle (lbgen.huffman.simulate_lane is the cycle model).
//
// Handshake: `valid` says `sym` holds the next symbol; `take` (only with
// valid) consumes it, and the next one is decoded in the same cycle, so the
// lane gives a symbol every cycle.
//
// Errors (sticky `err`, cleared by reset): a prefix of L bits that is no code
// (an incomplete code's unused prefix; the lane then gives ORDER[0] and skips
// L bits, so the engine keeps running), a pass whose last symbol does not
// end exactly at bit N_BITS, or whose symbols do not sum to CHECKSUM modulo
// 2^16. A flipped stream bit either changes one symbol (the sum differs) or
// the code boundaries (the pass end moves), so it never passes silently.
module lb_huff_lane #(
  parameter L         = 4,      // longest code
  parameter FW        = 4,      // ROM word bits (>= L)
  parameter WB        = 1,      // symbol bits
  parameter NSYM      = 2,      // symbols with a code
  parameter IXW       = 1,      // bits of a symbol index, 2^IXW > NSYM
  parameter LIMIT     = 1'b0,
  parameter FIRST     = 1'b0,
  parameter BASE      = 1'b0,
  parameter ORDER     = 1'b0,
  parameter DEPTH     = 1,      // ROM words of this lane
  parameter AW        = 1,      // ROM address bits, 2^AW >= DEPTH
  parameter LAST_BITS = 1,      // stream bits in the last word (1..FW)
  parameter N_BITS    = 1,      // stream bits of a pass
  parameter PASS_LEN  = 1,      // symbols of a pass
  parameter KW        = 1,      // bits of the symbol counter, 2^KW >= PASS_LEN
  parameter POSW      = 5,      // bits of the pass bit position: 2^POSW > N_BITS + L, POSW >= the count's bits
  parameter [15:0] CHECKSUM = 16'd0,
  parameter INIT_FILE = ""
) (
  input  wire          clk,
  input  wire          rst_n,
  input  wire          take,
  output wire [WB-1:0] sym,
  output wire          valid,
  output wire          err
);
  localparam BW = 3 * FW + L;                   // bit buffer
  localparam CW = $clog2(BW + 1);               // bits of the buffer count

  // ---- parameter checks ------------------------------------------------
  generate
    if (L < 1 || FW < L || WB < 1 || NSYM < 1 || (1 << IXW) <= NSYM) begin : g_err_code
      lb_huff_lane_error_need_FW_ge_L_and_IXW_for_NSYM u_err ();
    end
    if (DEPTH < 1 || ((DEPTH - 1) >> AW) != 0 || LAST_BITS < 1 || LAST_BITS > FW
        || N_BITS != (DEPTH - 1) * FW + LAST_BITS) begin : g_err_rom
      lb_huff_lane_error_DEPTH_AW_LAST_BITS_N_BITS_disagree u_err ();
    end
    if (PASS_LEN < 1 || ((PASS_LEN - 1) >> KW) != 0 || ((N_BITS + L) >> POSW) != 0 || POSW < CW
        || WB > 16) begin : g_err_pass
      lb_huff_lane_error_KW_POSW_too_small_or_WB_above_16 u_err ();
    end
  endgenerate

  // sized constants
  localparam integer       L_I     = L;
  localparam integer       FW_I    = FW;
  localparam integer       LB_I    = LAST_BITS;
  localparam integer       BW_I    = BW;
  localparam integer       DL_I    = DEPTH - 1;
  localparam integer       KL_I    = PASS_LEN - 1;
  localparam integer       NB_I    = N_BITS;
  localparam [CW-1:0]      C_L     = L_I[CW-1:0];
  localparam [CW-1:0]      C_FW    = FW_I[CW-1:0];
  localparam [CW-1:0]      C_LAST  = LB_I[CW-1:0];
  localparam [CW:0]        C_BW    = BW_I[CW:0];
  localparam [AW-1:0]      A_LAST  = DL_I[AW-1:0];
  localparam [KW-1:0]      K_LAST  = KL_I[KW-1:0];
  localparam [POSW-1:0]    P_END   = NB_I[POSW-1:0];

  // ---- state -------------------------------------------------------------
  reg  [BW-1:0]   bits;        // stream bits, next at bit 0, zero above cnt
  reg  [CW-1:0]   cnt;
  reg             qv;          // the ROM word in q arrived this cycle
  reg             qlast;       // ... and it is the last word of the pass
  reg  [AW-1:0]   ra;          // next ROM address
  reg             hv;          // head symbol valid
  reg  [WB-1:0]   hsym;
  reg  [POSW-1:0] pos;         // stream bits consumed in this pass
  reg  [KW-1:0]   k;           // symbols decoded in this pass
  reg  [15:0]     sum;         // checksum of this pass
  reg             err_r;
  wire [FW-1:0]   q;

  // ---- decode: every prefix length at once, the shortest hit wins --------
  reg  [L-1:0]    rev;         // the next L stream bits, first one on top
  reg             found;
  reg  [CW-1:0]   len;
  reg  [IXW-1:0]  idx;
  integer i;
  always @* begin
    for (i = 0; i < L; i = i + 1) rev[L - 1 - i] = bits[i];
  end

  genvar l;
  wire [L:1] hit;
  wire [(L+1)*IXW-1:0] idx_l;
  generate
    for (l = 1; l <= L; l = l + 1) begin : g_len
      wire [L:0] pre = {{(L + 1 - l){1'b0}}, rev[L-1 -: l]};
      wire [L:0] lim = LIMIT[l*(L+1) +: L+1];
      wire [L:0] fst = FIRST[l*(L+1) +: L+1];
      wire [L:0] off = pre - fst;                      // < count[l] on a hit
      wire [IXW-1:0] bse = BASE[l*IXW +: IXW];
      /* verilator lint_off UNSIGNED */
      assign hit[l] = pre < lim;                       // constant 0 where LIMIT[l] = 0
      /* verilator lint_on UNSIGNED */
      assign idx_l[l*IXW +: IXW] = bse + off[IXW-1:0];
      if (L + 1 > IXW) begin : g_unused
        wire unused_off = &{1'b0, off[L:IXW]};
      end
    end
  endgenerate
  assign idx_l[IXW-1:0] = {IXW{1'b0}};

  always @* begin
    found = 1'b0;
    len   = {CW{1'b0}};
    idx   = {IXW{1'b0}};
    for (i = L; i >= 1; i = i - 1) begin
      if (hit[i]) begin
        found = 1'b1;
        len   = i[CW-1:0];
        idx   = idx_l[i*IXW +: IXW];
      end
    end
  end

  wire          want  = !hv || take;
  wire          ok    = found && (len <= cnt);
  wire          bad   = !found && (cnt >= C_L);         // no code starts here
  wire          load  = want && (ok || bad);
  wire [CW-1:0] used  = load ? (bad ? C_L : len) : {CW{1'b0}};
  wire [WB-1:0] dsym  = bad ? ORDER[WB-1:0] : ORDER[idx*WB +: WB];
  wire          last  = (k == K_LAST);
  wire [POSW-1:0] pos_next = pos + {{(POSW - CW){1'b0}}, used};
  wire [15:0]   sum_next = sum + {{(16 - WB){1'b0}}, dsym};
  wire          pass_bad = last && (pos_next != P_END || sum_next != CHECKSUM);

  // ---- refill: a word is read when it and the word in flight both fit ----
  wire [CW:0]   room  = {1'b0, cnt} + (qv ? {1'b0, C_FW} : {(CW+1){1'b0}}) + {1'b0, C_FW};
  wire          rd    = room <= C_BW;
  wire [CW-1:0] nb    = qv ? (qlast ? C_LAST : C_FW) : {CW{1'b0}};
  wire [FW-1:0] qmask = qlast ? ({FW{1'b1}} >> (FW - LAST_BITS)) : {FW{1'b1}};
  wire [CW-1:0] kept  = cnt - used;
  wire [BW-1:0] shifted  = bits >> used;
  wire [BW-1:0] incoming = {{(BW - FW){1'b0}}, q & qmask} << kept;

  lb_rom #(
    .DEPTH(DEPTH), .WIDTH(FW), .ADDR_W(AW), .INIT_FILE(INIT_FILE)
  ) u_rom (
    .clk(clk), .en(rd), .addr(ra), .q(q)
  );

  always @(posedge clk) begin
    if (!rst_n) begin
      bits  <= {BW{1'b0}};
      cnt   <= {CW{1'b0}};
      qv    <= 1'b0;
      qlast <= 1'b0;
      ra    <= {AW{1'b0}};
      hv    <= 1'b0;
      hsym  <= {WB{1'b0}};
      pos   <= {POSW{1'b0}};
      k     <= {KW{1'b0}};
      sum   <= 16'd0;
      err_r <= 1'b0;
    end else begin
      bits  <= qv ? (shifted | incoming) : shifted;
      cnt   <= kept + nb;
      qv    <= rd;
      if (rd) begin
        qlast <= (ra == A_LAST);
        ra    <= (ra == A_LAST) ? {AW{1'b0}} : ra + 1'b1;
      end
      if (load) begin
        hv   <= 1'b1;
        hsym <= dsym;
        pos  <= last ? {POSW{1'b0}} : pos_next;
        k    <= last ? {KW{1'b0}} : k + 1'b1;
        sum  <= last ? 16'd0 : sum_next;
        if (bad || pass_bad) err_r <= 1'b1;
      end else if (take) begin
        hv <= 1'b0;
      end
    end
  end

  assign sym   = hsym;
  assign valid = hv;
  assign err   = err_r;
endmodule
