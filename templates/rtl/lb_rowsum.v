`timescale 1ns/1ps
// lb_rowsum -- combinational sum of N rows, M independent W-bit fields per row.
//
// rows holds N rows of M fields: field m of row r at [(r*M + m)*W +: W],
// unsigned. sum field m = sum over r of field m of row r, modulo 2^W (exact
// when the true sum fits W bits, which the caller guarantees; every partial
// sum is then below 2^W too, so no carry ever leaves a field).
//
// A compressor tree, not an adder chain (area per input bit ~1 LUT6):
//   while 6 or more rows remain: 6:3 counters, row-wise -- rows 6g..6g+5
//     become three rows: bit k of field m of the outputs is the count of
//     ones among bit k of the six inputs (weights 1, 2, 4). Each output bit
//     is a function of 6 input bits: one LUT6, no carry chain;
//   then pairwise adders (one carry chain per field) down to one row.
// The caller lists rows with similar bit positions next to each other:
// level by level the outputs keep that order (all weight-1 outputs, then
// the weight-2, then the weight-4 ones, then the rows passed up), so a
// counter mostly sees six rows whose nonzero bits line up. Bits that are
// constant zero (the caller's unused positions) vanish in synthesis.
//
// One combinational process per level, reading the whole level below: an
// event-driven simulator evaluates each level once per new input, not once
// per counter. The lb_pe_* cores use it with BEHAVIORAL = 0
// (their word-level models, BEHAVIORAL = 1, add lane words with
// lb_adder_tree instead).
module lb_rowsum #(
  parameter N = 1,
  parameter W = 2,
  parameter M = 1
) (
  input  wire [N*M*W-1:0] rows,
  output wire [M*W-1:0]   sum
);
  generate
    if (N < 1 || W < 2 || M < 1) begin : g_err_size
      lb_rowsum_error_need_N_ge_1_W_ge_2_M_ge_1 u_err ();
    end
  endgenerate

  // rows after `lvl` levels: 6:3 counters while >= 6 rows, then pairs
  function integer rows_at;
    input [31:0] n;
    input [31:0] lvl;
    integer i, r;
    begin
      r = n;
      for (i = 0; i < lvl; i = i + 1) begin
        if (r >= 6) r = 3 * (r / 6) + r % 6;
        else r = (r + 1) / 2;
      end
      rows_at = r;
    end
  endfunction

  function integer levels;
    input [31:0] n;
    integer l;
    begin
      levels = 0;
      for (l = 0; rows_at(n, l) > 1; l = l + 1) levels = l + 1;
    end
  endfunction

  // fields with their lowest k bits cleared (what a shift by k brings in
  // from the field below is zero, since no field overflows)
  function [M*W-1:0] field_mask;
    input [31:0] k;
    integer i;
    begin
      for (i = 0; i < M*W; i = i + 1) field_mask[i] = ((i % W) >= k);
    end
  endfunction

  localparam NL = levels(N);
  localparam MW = M * W;                  // one row
  localparam [MW-1:0] MASK1 = field_mask(1);
  localparam [MW-1:0] MASK2 = field_mask(2);

  genvar l;
  generate
    if (NL == 0) begin : g_one
      assign sum = rows;
    end else begin : g_tree
      // one process per level (it wakes once per new level below, not once
      // per counter or field)
      for (l = 0; l <= NL; l = l + 1) begin : g_l
        localparam R = rows_at(N, l);                      // rows of this level
        wire [R*MW-1:0] v;
        if (l == 0) begin : g_in
          assign v = rows;
        end else begin : g_next
          localparam RP = rows_at(N, l - 1);               // rows of the level below
          wire [RP*MW-1:0] u = g_l[l-1].v;
          reg  [R*MW-1:0]  r;
          assign v = r;
          if (RP >= 6) begin : g_c63
            localparam G = RP / 6;                         // counters
            localparam P = RP % 6;                         // rows passed up
            reg [MW-1:0] a, b, c, d, e, f, s1, c1, s2, c2, h;
            integer g;
            always @* begin
              r = {(R*MW){1'b0}};
              for (g = 0; g < G; g = g + 1) begin
                a  = u[(6*g)*MW +: MW];
                b  = u[(6*g+1)*MW +: MW];
                c  = u[(6*g+2)*MW +: MW];
                d  = u[(6*g+3)*MW +: MW];
                e  = u[(6*g+4)*MW +: MW];
                f  = u[(6*g+5)*MW +: MW];
                s1 = a ^ b ^ c;
                c1 = (a & b) | (a & c) | (b & c);
                s2 = d ^ e ^ f;
                c2 = (d & e) | (d & f) | (e & f);
                h  = s1 & s2;
                r[g*MW +: MW]       = s1 ^ s2;
                r[(G+g)*MW +: MW]   = ((c1 ^ c2 ^ h) << 1) & MASK1;
                r[(2*G+g)*MW +: MW] = (((c1 & c2) | (c1 & h) | (c2 & h)) << 2) & MASK2;
              end
              for (g = 0; g < P; g = g + 1) r[(3*G+g)*MW +: MW] = u[(6*G+g)*MW +: MW];
            end
          end else begin : g_add
            integer g, m;
            always @* begin
              r = {(R*MW){1'b0}};
              for (g = 0; g < R; g = g + 1) begin
                if (2*g + 1 < RP) begin
                  for (m = 0; m < M; m = m + 1)
                    r[g*MW + m*W +: W] = u[(2*g)*MW + m*W +: W] + u[(2*g+1)*MW + m*W +: W];
                end else begin
                  r[g*MW +: MW] = u[(2*g)*MW +: MW];
                end
              end
            end
          end
        end
      end
      assign sum = g_l[NL].v;
    end
  endgenerate
endmodule
