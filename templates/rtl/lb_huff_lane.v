`timescale 1ns/1ps
// lb_huff_lane -- one lane of a Huffman-coded weight stream: a canonical
// prefix-code decoder with its own stream ROM, one symbol per step.
//
// Code (canonical, lbgen.huffman.HuffmanCode): codes are sent most
// significant bit first. With `peek` the next L stream bits (first one on
// top), the code length is the smallest l with peek < LJ[l], where LJ[l] =
// limit[l] << (L - l) is the left-justified limit of length l: an l-bit
// prefix is a whole code iff it is below limit[l] and no shorter one was.
// The LJ[l] do not decrease with l, so the L comparisons against constants
// form a thermometer and a priority encoder picks the length; no l at all
// means no code starts here. The symbol is
// ORDER[BASE[l] + (peek >> (L - l)) - FIRST[l]].
//   LJ, FIRST: entry l (l = 1..L) at [l*(L+1) +: L+1], entry 0 unused;
//   BASE: entry l at [l*IXW +: IXW]; ORDER: symbol k at [k*WB +: WB].
//
// Stream ROM (INIT_FILE, $readmemh): DEPTH words of FW >= L bits, stream bit
// i at bit FW-1 - i % FW of word i / FW (first bit on top). A pass is the
// lane's PASS_LEN symbols; its last word holds LAST_BITS stream bits above
// zero padding. The ROM is read cyclically, one pass after the other.
//
// Window: `cur` (the word being decoded) and the ROM's registered output `q`
// (always the word after it) form a 2*FW-bit window; the next code starts
// p bits into it (0 <= p <= FW), so peek = the L window bits from p, one
// (FW+1):1 multiplexer per peek bit. A step that ends at or beyond the end
// of `cur` moves `q` into `cur` and reads the next word in the same cycle
// (ROM enable = that decision), so the window keeps up with one symbol per
// cycle whatever the code lengths: no bit buffer, no stalls. The last
// symbol of a pass moves on to the start of the word after the pass's last
// word, skipping the padding: to p = 0 if it ended in `cur`, to p = FW (the
// top of the new `q`) if it ended in `q`.
//
// Control (shared by the lanes of a layer, lb_huff_weights): `start` for
// the first cycle after reset (read word 0), `prime` for the second (word 0
// into `cur`, read word 1), then `step` decodes one symbol into `sym`;
// `last` marks the pass's last symbol.
//
// Errors (sticky `err`, cleared by reset): L bits that start no code (an
// incomplete code's unused prefix; the lane gives ORDER[0] and skips L bits,
// so the engine keeps running), a pass whose last symbol does not end at
// bit LAST_BITS of the pass's last word, or whose symbols do not sum to CHECKSUM
// modulo 2^16. A flipped stream bit changes one symbol (the sum differs) or
// the code boundaries (the pass end moves), so it does not pass silently
// (lbgen.huffman.simulate_lane is the cycle model; the tests flip every bit).
module lb_huff_lane #(
  parameter L         = 4,      // longest code
  parameter FW        = 4,      // ROM word bits (>= L)
  parameter WB        = 1,      // symbol bits (<= 16)
  parameter NSYM      = 2,      // symbols with a code
  parameter IXW       = 2,      // bits of a symbol index, 2^IXW > NSYM
  parameter LJ        = 1'b0,
  parameter FIRST     = 1'b0,
  parameter BASE      = 1'b0,
  parameter ORDER     = 1'b0,
  parameter DEPTH     = 1,      // ROM words of this lane
  parameter LAST_BITS = 1,      // stream bits in the last word (1..FW)
  parameter [15:0] CHECKSUM = 16'd0,
  parameter INIT_FILE = ""
) (
  input  wire          clk,
  input  wire          rst_n,
  input  wire          start,
  input  wire          prime,
  input  wire          step,
  input  wire          last,
  output wire [WB-1:0] sym,
  output wire          err
);
  localparam AW = (DEPTH > 1) ? $clog2(DEPTH) : 1;   // ROM address bits
  localparam PW = $clog2(FW + 1);                    // bit pointer into the window, 0..FW

  // ---- parameter checks ------------------------------------------------
  generate
    if (L < 1 || FW < L || WB < 1 || WB > 16 || NSYM < 1 || (1 << IXW) <= NSYM) begin : g_err_code
      lb_huff_lane_error_need_FW_ge_L_WB_le_16_and_IXW_for_NSYM u_err ();
    end
    if (DEPTH < 1 || LAST_BITS < 1 || LAST_BITS > FW) begin : g_err_rom
      lb_huff_lane_error_DEPTH_or_LAST_BITS_out_of_range u_err ();
    end
  endgenerate

  // sized constants
  localparam integer      L_I    = L;
  localparam integer      FW_I   = FW;
  localparam integer      LB_I   = LAST_BITS;
  localparam integer      DL_I   = DEPTH - 1;
  localparam [PW:0]       P_L    = L_I[PW:0];
  localparam [PW:0]       P_FW   = FW_I[PW:0];
  localparam [PW:0]       P_LAST = LB_I[PW:0];
  localparam [AW-1:0]     A_LAST = DL_I[AW-1:0];

  // ---- state -------------------------------------------------------------
  reg  [FW-1:0] cur;           // the word being decoded
  reg           curlast;       // ... is the pass's last word
  reg           qlast;         // q is the pass's last word
  reg  [AW-1:0] ra;            // address of the word after q
  reg  [PW-1:0] p;             // the next code starts p bits into the window
  reg  [WB-1:0] hsym;
  reg  [15:0]   sum;           // checksum of this pass so far
  reg           err_r;
  wire [FW-1:0] q;
  reg           rd;            // read the ROM (set by the process below)

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

  // ---- decode: combinational, the temporaries of one process, so a
  // ---- simulator evaluates a lane once per change of its window
  reg  [L-1:0]   peek;         // the next L stream bits, first on top
  reg  [PW:0]    len;          // code length, 0: no code
  reg  [L:0]     code;
  /* verilator lint_off UNUSEDSIGNAL */
  reg  [L:0]     off;          // only its low IXW bits index the symbols
  reg  [2*FW-1:0] win;         // only its top L bits are the peek
  reg  [PW:0]    pn;           // the next code's window position (<= FW: the top bit is 0)
  /* verilator lint_on UNUSEDSIGNAL */
  reg  [IXW-1:0] idx;
  reg  [WB-1:0]  dsym;
  reg  [PW:0]    np;           // window position after this code, 1 .. 2*FW
  reg            inq;          // ... which lies in q
  reg            adv;          // cur is used up: q moves in, the next word is read
  reg  [15:0]    sum_next;
  integer        l;
  always @(*) begin
    win  = {cur, q} << p;
    peek = win[2*FW-1 -: L];
    len  = {(PW+1){1'b0}};
    for (l = L; l >= 1; l = l - 1) begin
      if ({1'b0, peek} < LJ[l*(L+1) +: L+1]) len = l[PW:0];
    end
    code     = {1'b0, peek} >> (P_L - len);
    off      = code - FIRST[len*(L+1) +: L+1];
    idx      = BASE[len*IXW +: IXW] + off[IXW-1:0];
    dsym     = order_rom[(len == {(PW+1){1'b0}}) ? {IXW{1'b0}} : idx];
    np       = {1'b0, p} + ((len == {(PW+1){1'b0}}) ? P_L : len);
    inq      = np > P_FW;
    adv      = last || np >= P_FW;
    if (last) pn = inq ? P_FW : {(PW+1){1'b0}};
    else      pn = adv ? np - P_FW : np;
    sum_next = sum + {{(16 - WB){1'b0}}, dsym};
    rd       = start || prime || (step && adv);
  end

  always @(posedge clk) begin
    if (!rst_n) begin
      cur     <= {FW{1'b0}};
      curlast <= 1'b0;
      qlast   <= 1'b0;
      ra      <= {AW{1'b0}};
      p       <= {PW{1'b0}};
      hsym    <= {WB{1'b0}};
      sum     <= 16'd0;
      err_r   <= 1'b0;
    end else begin
      if (rd) begin
        qlast <= (ra == A_LAST);
        ra    <= (ra == A_LAST) ? {AW{1'b0}} : ra + 1'b1;
      end
      if (prime || (step && adv)) begin
        cur     <= q;
        curlast <= qlast;
      end
      if (step) begin
        hsym <= dsym;
        p    <= pn[PW-1:0];
        sum  <= last ? 16'd0 : sum_next;
        if (len == {(PW+1){1'b0}} || (last && (!(inq ? qlast : curlast) || (inq ? np - P_FW : np) != P_LAST
                                           || sum_next != CHECKSUM)))
          err_r <= 1'b1;
      end
    end
  end

  assign sym = hsym;
  assign err = err_r;
endmodule
