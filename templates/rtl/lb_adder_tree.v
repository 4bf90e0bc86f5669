`timescale 1ns/1ps
// lb_adder_tree -- combinational balanced adder tree, sum of N elements.
//
// in holds N elements of IN_W bits, element i at [i*IN_W +: IN_W], signed
// (IN_SIGNED=1) or unsigned. sum is OUT_W bits: each element is sign/zero
// extended (or truncated) to OUT_W and the additions are modulo 2^OUT_W, so
// the result is exact whenever the true sum fits in OUT_W bits. Any N >= 1;
// the tree is a binary heap (node k = node 2k+1 + node 2k+2, leaves at
// N-1 .. 2N-2), depth ceil(log2 N).
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

  wire [(2*N-1)*OUT_W-1:0] node;

  genvar i;
  generate
    for (i = 0; i < N; i = i + 1) begin : g_leaf
      if (OUT_W > IN_W) begin : g_ext
        wire [IN_W-1:0] x = in[i*IN_W +: IN_W];
        wire            fill = (IN_SIGNED != 0) ? x[IN_W-1] : 1'b0;
        assign node[(N-1+i)*OUT_W +: OUT_W] = {{(OUT_W-IN_W){fill}}, x};
      end else begin : g_cut
        // modulo 2^OUT_W: the upper bits of a leaf do not reach the sum
        assign node[(N-1+i)*OUT_W +: OUT_W] = in[i*IN_W +: OUT_W];
        if (IN_W > OUT_W) begin : g_drop
          wire unused_hi = &{1'b0, in[i*IN_W+OUT_W +: IN_W-OUT_W]};
        end
      end
    end
    for (i = 0; i < N-1; i = i + 1) begin : g_add
      assign node[i*OUT_W +: OUT_W] = node[(2*i+1)*OUT_W +: OUT_W] + node[(2*i+2)*OUT_W +: OUT_W];
    end
  endgenerate

  assign sum = node[0 +: OUT_W];
endmodule
