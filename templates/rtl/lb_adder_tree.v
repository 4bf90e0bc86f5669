`timescale 1ns/1ps
// lb_adder_tree -- combinational balanced adder tree, sum of N elements.
//
// in holds N elements of IN_W bits, element i at [i*IN_W +: IN_W], signed
// (IN_SIGNED=1) or unsigned. sum is OUT_W bits: each element is sign/zero
// extended (or truncated) to OUT_W and the additions are modulo 2^OUT_W, so
// the result is exact whenever the true sum fits in OUT_W bits. Any N >= 1.
//
// The tree pairs neighbours level by level (level l+1 element j = level l
// elements 2j + 2j+1, an odd last element passes up), so its depth is
// ceil(log2 N) and it has N-1 adders. Two levels at a time form one block:
// block level b element j = (e[4j] + e[4j+1]) + (e[4j+2] + e[4j+3]) of block
// level b-1 (the elements themselves at b = 1); missing operands are zero and
// their adders vanish in synthesis. One small combinational process per
// block: an event-driven simulator evaluates each block once per change of
// `in`, not once per change of any of its operands.
module lb_adder_tree #(
  parameter N         = 2,
  parameter IN_W      = 1,
  parameter OUT_W     = 2,
  parameter IN_SIGNED = 0
) (
  input  wire [N*IN_W-1:0] in,
  output wire [OUT_W-1:0]  sum
);
  generate
    if (N < 1 || IN_W < 1 || OUT_W < 1) begin : g_err_size
      lb_adder_tree_error_N_IN_W_OUT_W_must_be_positive u_err ();
    end
  endgenerate

  // number of elements at block level b: ceil(n / 4^b)
  function integer groups;
    input [31:0] n;
    input [31:0] lvl;
    integer i;
    begin
      groups = n;
      for (i = 0; i < lvl; i = i + 1) groups = (groups + 3) / 4;
    end
  endfunction

  // number of block levels: the first level with one element
  function integer levels;
    input [31:0] n;
    integer lvl;
    begin
      levels = 1;
      for (lvl = 1; groups(n, lvl) > 1; lvl = lvl + 1) levels = lvl + 1;
    end
  endfunction

  localparam NB = levels(N);
  localparam NI = 4 * groups(N, 1);                   // elements, zero padded
  localparam XW = (OUT_W > IN_W) ? OUT_W - IN_W : 1;  // extension bits of an element
  localparam [OUT_W-1:0] ZERO = {OUT_W{1'b0}};

  wire [NI*IN_W-1:0] x;
  genvar b, j;
  generate
    if (NI > N) begin : g_pad
      assign x = {{(NI-N)*IN_W{1'b0}}, in};
    end else begin : g_nopad
      assign x = in;
    end
    if (IN_W > OUT_W) begin : g_drop
      // modulo 2^OUT_W: the upper bits of an element do not reach the sum
      wire unused_hi = &{1'b0, x};
    end
    for (b = 1; b <= NB; b = b + 1) begin : g_b
      localparam E  = groups(N, b);        // elements at this level
      localparam EP = groups(N, b - 1);    // operands: elements one level down
      for (j = 0; j < E; j = j + 1) begin : g_e
        localparam O = 4 * j * IN_W;       // first operand (b = 1)
        // operand 4j+k of a higher level, or the index of an existing one
        // (never read) when it is missing
        localparam K1 = (4*j + 1 < EP) ? 4*j + 1 : 4*j;
        localparam K2 = (4*j + 2 < EP) ? 4*j + 2 : 4*j;
        localparam K3 = (4*j + 3 < EP) ? 4*j + 3 : 4*j;
        reg [OUT_W-1:0] v;
        if (b > 1) begin : g_node
          always @* v = (g_b[b-1].g_e[4*j].v + ((4*j + 1 < EP) ? g_b[b-1].g_e[K1].v : ZERO))
                      + (((4*j + 2 < EP) ? g_b[b-1].g_e[K2].v : ZERO)
                      +  ((4*j + 3 < EP) ? g_b[b-1].g_e[K3].v : ZERO));
        end else if (OUT_W > IN_W && IN_SIGNED != 0) begin : g_sext
          // sign extension by an arithmetic shift: one read of x per element
          always @* v = (($signed({x[O        +: IN_W], {XW{1'b0}}}) >>> XW)
                      +  ($signed({x[O+IN_W   +: IN_W], {XW{1'b0}}}) >>> XW))
                      + (($signed({x[O+2*IN_W +: IN_W], {XW{1'b0}}}) >>> XW)
                      +  ($signed({x[O+3*IN_W +: IN_W], {XW{1'b0}}}) >>> XW));
        end else if (OUT_W > IN_W) begin : g_zext
          always @* v = ({{XW{1'b0}}, x[O        +: IN_W]} + {{XW{1'b0}}, x[O+IN_W   +: IN_W]})
                      + ({{XW{1'b0}}, x[O+2*IN_W +: IN_W]} + {{XW{1'b0}}, x[O+3*IN_W +: IN_W]});
        end else begin : g_cut
          always @* v = (x[O        +: OUT_W] + x[O+IN_W   +: OUT_W])
                      + (x[O+2*IN_W +: OUT_W] + x[O+3*IN_W +: OUT_W]);
        end
      end
    end
  endgenerate

  assign sum = g_b[NB].g_e[0].v;
endmodule
