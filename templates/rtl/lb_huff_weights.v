`timescale 1ns/1ps
// lb_huff_weights -- the weight word of lb_mvau from Huffman-coded streams:
// LANES = PE*SIMD lanes (lb_huff_lane), one per element of the word, each
// with its own stream ROM and decoder, so the engine gets PE*SIMD weights in
// every cycle at one symbol per decoder and cycle.
//
// Lane p*SIMD + s carries, in weight ROM address order nf*SF + sf, the code
// of W[nf*PE + p][sf*SIMD + s] (lbgen.huffman.lane_sequences); `word` places
// lane i at [i*WB +: WB], the layout of lb_mvau's weight ROM word.
//
// All lanes share the code (L, FW, WB, NSYM, IXW, LJ, FIRST, BASE, ORDER:
// see lb_huff_lane) and the pass length PASS_LEN = NF*SF. Per lane i,
// LANE_META[i*96 +: 96] = {LAST_BITS[15:0], CHECKSUM[15:0], N_BITS[31:0],
// DEPTH[31:0]} (DEPTH lowest; N_BITS, the pass's stream bits, is for readers). Lane i's ROM file is INIT_FILE with the
// four-digit decimal lane index put onto its "0000" before ".mem"
// ("fc1_huff_0000.mem" -> lane 13 reads "fc1_huff_0013.mem").
//
// The lanes decode in lockstep, so their control is shared here: two cycles
// after reset to fill every lane's window, then a step whenever the word is
// wanted (none held, or the held one is taken), and a counter of the pass
// that marks its last symbol (k = PASS_LEN - 1).
//
// `ready`: the word of the next issue is there; `take` (with ready) consumes
// it and the next one is decoded in the same cycle, so the engine gets a
// word in every cycle. `err` (sticky) is the OR of the lanes' errors.
module lb_huff_weights #(
  parameter LANES     = 1,
  parameter L         = 4,
  parameter FW        = 4,
  parameter WB        = 1,
  parameter NSYM      = 2,
  parameter IXW       = 2,
  parameter LJ        = 1'b0,
  parameter FIRST     = 1'b0,
  parameter BASE      = 1'b0,
  parameter ORDER     = 1'b0,
  parameter PASS_LEN  = 1,
  parameter KW        = 1,      // bits of the pass counter, 2^KW >= PASS_LEN
  parameter LANE_META = 96'd0,
  parameter INIT_FILE = ""
) (
  input  wire                clk,
  input  wire                rst_n,
  input  wire                take,
  output wire [LANES*WB-1:0] word,
  output wire                ready,
  output wire                err
);
  generate
    if (LANES < 1 || LANES > 9999) begin : g_err_lanes
      lb_huff_weights_error_LANES_must_be_1_to_9999 u_err ();
    end
    if (PASS_LEN < 1 || ((PASS_LEN - 1) >> KW) != 0) begin : g_err_pass
      lb_huff_weights_error_KW_too_small_for_PASS_LEN u_err ();
    end
    /* verilator lint_off WIDTHEXPAND */
    if (INIT_FILE != "" && (INIT_FILE & {64{1'b1}}) != "0000.mem") begin : g_err_name
      lb_huff_weights_error_INIT_FILE_must_end_in_0000_mem u_err ();
    end
    /* verilator lint_on WIDTHEXPAND */
  endgenerate

  // the file of lane i: its digits added onto the '0's of INIT_FILE (the sum is
  // as wide as the name, at least 64 bits as checked above)
  function [63:0] name_offset;
    input [31:0] i;
    reg   [31:0] d3, d2, d1, d0;
    begin
      d3 = (i / 32'd1000) % 32'd10;
      d2 = (i / 32'd100) % 32'd10;
      d1 = (i / 32'd10) % 32'd10;
      d0 = i % 32'd10;
      name_offset = ({32'd0, d3} << 56) + ({32'd0, d2} << 48) + ({32'd0, d1} << 40) + ({32'd0, d0} << 32);
    end
  endfunction

  // ---- shared control ----------------------------------------------------
  localparam integer   KL_I   = PASS_LEN - 1;
  localparam [KW-1:0]  K_LAST = KL_I[KW-1:0];
  reg  [1:0]    fill;          // 0: read word 0, 1: word 0 into the window, 2: decoding
  reg           hv;            // the lanes hold the next word
  reg  [KW-1:0] k;             // symbol of the pass decoded next
  wire          start = (fill == 2'd0);
  wire          prime = (fill == 2'd1);
  wire          step  = (fill == 2'd2) && (!hv || take);
  wire          last  = (k == K_LAST);

  always @(posedge clk) begin
    if (!rst_n) begin
      fill <= 2'd0;
      hv   <= 1'b0;
      k    <= {KW{1'b0}};
    end else begin
      if (fill != 2'd2) fill <= fill + 2'd1;
      if (step) begin
        hv <= 1'b1;
        k  <= last ? {KW{1'b0}} : k + 1'b1;
      end else if (take) begin
        hv <= 1'b0;
      end
    end
  end

  wire [LANES-1:0] errs;
  genvar i;
  generate
    for (i = 0; i < LANES; i = i + 1) begin : g_lane
      localparam [95:0] META = LANE_META[i*96 +: 96];
      lb_huff_lane #(
        .L(L), .FW(FW), .WB(WB), .NSYM(NSYM), .IXW(IXW),
        .LJ(LJ), .FIRST(FIRST), .BASE(BASE), .ORDER(ORDER),
        .DEPTH(META[31:0]), .LAST_BITS({16'd0, META[95:80]}), .CHECKSUM(META[79:64]),
        /* verilator lint_off WIDTHEXPAND */
        .INIT_FILE((INIT_FILE == "") ? "" : INIT_FILE + name_offset(i))
        /* verilator lint_on WIDTHEXPAND */
      ) u_lane (
        .clk(clk), .rst_n(rst_n), .start(start), .prime(prime), .step(step), .last(last),
        .sym(word[i*WB +: WB]), .err(errs[i])
      );
    end
  endgenerate

  assign ready = hv;
  assign err   = |errs;
endmodule
