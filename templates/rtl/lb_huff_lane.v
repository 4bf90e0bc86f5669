`timescale 1ns/1ps
// lb_huff_lane -- one lane of a Huffman-coded weight stream: a canonical
// prefix-code decoder with its own stream ROM, one symbol per cycle.
//
// Code (canonical, lbgen.huffman.HuffmanCode): codes are sent most
// significant bit first. With `peek` the next L stream bits (first one on
// top), the code length is the smallest l with peek < LJ[l], where LJ[l] =
// limit[l] << (L - l) is the left-justified limit of length l: an l-bit
// prefix is a whole code iff it is below limit[l] and no shorter one was.
// The LJ[l] do not decrease with l, so the length is found by a binary
// search (ceil(log2(L+1)) comparators of L+1 bits in a row, equivalent to
// comparing every length at once); no l at all means no code starts here.
// The symbol is ORDER[BASE[l] + (peek >> (L - l)) - FIRST[l]].
//   LJ, FIRST: entry l (l = 1..L) at [l*(L+1) +: L+1], entry 0 unused;
//   BASE: entry l at [l*IXW +: IXW]; ORDER: symbol k at [k*WB +: WB].
//
// Stream ROM (INIT_FILE, $readmemh): DEPTH words of FW bits, stream bit i at
// bit FW-1 - i % FW of word i / FW (first bit on top). A pass is PASS_LEN
// symbols in N_BITS bits; the last word holds LAST_BITS of them (its low
// bits are padding and never enter the buffer), and the ROM is read
// cyclically, so passes follow each other with no gap.
//
// Buffer: BW = 3*FW + L bits, next stream bit at the top (bit BW-1). A word is read
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
  parameter IXW       = 2,      // bits of a symbol index, 2^IXW > NSYM
  parameter LJ        = 1'b0,
  parameter FIRST     = 1'b0,
  parameter BASE      = 1'b0,
  parameter ORDER     = 1'b0,
  parameter DEPTH     = 1,      // ROM words of this lane
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
  localparam AW = (DEPTH > 1) ? $clog2(DEPTH) : 1; // ROM address bits
  localparam CW = $clog2(BW + 1);               // bits of the buffer count

  // ---- parameter checks ------------------------------------------------
  generate
    if (L < 1 || FW < L || WB < 1 || NSYM < 1 || (1 << IXW) <= NSYM) begin : g_err_code
      lb_huff_lane_error_need_FW_ge_L_and_IXW_for_NSYM u_err ();
    end
    if (DEPTH < 1 || LAST_BITS < 1 || LAST_BITS > FW
        || N_BITS != (DEPTH - 1) * FW + LAST_BITS) begin : g_err_rom
      lb_huff_lane_error_DEPTH_LAST_BITS_N_BITS_disagree u_err ();
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
  reg  [BW-1:0]   bits;        // stream bits, next on top, zero below the top cnt
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

  // ---- refill: a word is read when it and the word in flight both fit ----
  wire [CW:0]   room  = {1'b0, cnt} + (qv ? {1'b0, C_FW} : {(CW+1){1'b0}}) + {1'b0, C_FW};
  wire          rd    = room <= C_BW;
  wire [FW-1:0] qmask = qlast ? ~({FW{1'b1}} >> LAST_BITS) : {FW{1'b1}};

  lb_rom #(
    .DEPTH(DEPTH), .WIDTH(FW), .ADDR_W(AW), .INIT_FILE(INIT_FILE)
  ) u_rom (
    .clk(clk), .en(rd), .addr(ra), .q(q)
  );

  // symbols in code order as a ROM (a variable part-select of the wide ORDER
  // parameter costs a simulator a copy of all of it per read)
  reg [WB-1:0] order_rom [0:(1<<IXW)-1];
  integer j;
  initial begin
    for (j = 0; j < (1 << IXW); j = j + 1) order_rom[j] = (j < NSYM) ? ORDER[j*WB +: WB] : {WB{1'b0}};
  end

  // ---- one clocked process: decode, consume, append. Its temporaries are
  // ---- blocking, so a simulator evaluates a lane once per cycle.
  localparam STEPS = $clog2(L + 1);               // binary-search steps
  /* verilator lint_off BLKSEQ */
  always @(posedge clk) begin : step
    reg [L-1:0]    peek;       // the next L stream bits, first on top
    reg [CW:0]     lo, hi, mid;
    reg [L:0]      code;
    /* verilator lint_off UNUSEDSIGNAL */
    reg [L:0]      off;        // only its low IXW bits index the symbols
    /* verilator lint_on UNUSEDSIGNAL */
    reg            found;
    reg [CW-1:0]   len;
    reg [IXW-1:0]  idx;
    reg            bad;
    reg            load;
    reg [CW-1:0]   used;
    reg [CW-1:0]   kept;
    reg [WB-1:0]   dsym;
    reg [POSW-1:0] pos_next;
    reg [15:0]     sum_next;
    reg            last;
    integer        s;
    peek  = bits[BW-1 -: L];
    lo    = C_L + 1'b1;                          // L+1: no code starts here
    found = 1'b0;
    len   = {CW{1'b0}};
    idx   = {IXW{1'b0}};
    if (!hv || take) begin                       // a symbol is wanted (else skip the work)
      // smallest l in 1..L with peek < LJ[l]
      lo = 1;
      hi = C_L + 1'b1;
      for (s = 0; s < STEPS; s = s + 1) begin
        if (lo < hi) begin
          mid = (lo + hi) >> 1;
          if ({1'b0, peek} < LJ[mid*(L+1) +: L+1]) hi = mid;
          else lo = mid + 1'b1;
        end
      end
      found = (lo <= {1'b0, C_L});
      len   = lo[CW-1:0];
      code  = {1'b0, peek} >> (C_L - len);        // the code, right-justified
      off   = code - FIRST[len*(L+1) +: L+1];      // < count[len] when found
      idx   = BASE[len*IXW +: IXW] + off[IXW-1:0];
    end
    bad      = (!hv || take) && !found && (cnt >= C_L);   // no code starts here
    load     = (!hv || take) && ((found && len <= cnt) || bad);
    used     = load ? (bad ? C_L : len) : {CW{1'b0}};
    dsym     = order_rom[bad ? {IXW{1'b0}} : idx];
    last     = (k == K_LAST);
    pos_next = pos + {{(POSW - CW){1'b0}}, used};
    sum_next = sum + {{(16 - WB){1'b0}}, dsym};
    kept     = cnt - used;
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
      if (qv) begin
        bits <= (bits << used) | ({q & qmask, {(BW - FW){1'b0}}} >> kept);
        cnt  <= kept + (qlast ? C_LAST : C_FW);
      end else begin
        bits <= bits << used;
        cnt  <= kept;
      end
      qv <= rd;
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
        if (bad || (last && (pos_next != P_END || sum_next != CHECKSUM))) err_r <= 1'b1;
      end else if (take) begin
        hv <= 1'b0;
      end
    end
  end
  /* verilator lint_on BLKSEQ */

  assign sym   = hsym;
  assign valid = hv;
  assign err   = err_r;
endmodule
