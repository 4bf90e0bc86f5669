`timescale 1ns/1ps
// lb_thresh -- multi-threshold activation of one channel (combinational).
//
//   count = number of j in 0..N_THRESH-1 with acc >= thr[j]   (signed compare)
//   level = inv ? N_THRESH - count : count
//
// acc and every threshold are signed ACC_BITS; threshold j sits at
// thr[j*ACC_BITS +: ACC_BITS]. The count does not assume ascending
// thresholds. level is OUT_BITS wide, N_THRESH <= 2^OUT_BITS - 1.
module lb_thresh #(
  parameter ACC_BITS = 8,
  parameter N_THRESH = 1,
  parameter OUT_BITS = 1
) (
  input  wire [ACC_BITS-1:0]          acc,
  input  wire [N_THRESH*ACC_BITS-1:0] thr,
  input  wire                         inv,
  output wire [OUT_BITS-1:0]          level
);
  generate
    if (N_THRESH < 1 || OUT_BITS < 1 || ACC_BITS < 1) begin : g_err_size
      lb_thresh_error_sizes_must_be_positive u_err ();
    end
    if (N_THRESH > (1 << OUT_BITS) - 1) begin : g_err_levels
      lb_thresh_error_N_THRESH_exceeds_2_pow_OUT_BITS_minus_1 u_err ();
    end
  endgenerate

  localparam integer        TOP_I = N_THRESH;
  localparam [OUT_BITS-1:0] TOP   = TOP_I[OUT_BITS-1:0];

  wire [N_THRESH-1:0] ge;
  genvar j;
  generate
    for (j = 0; j < N_THRESH; j = j + 1) begin : g_cmp
      assign ge[j] = $signed(acc) >= $signed(thr[j*ACC_BITS +: ACC_BITS]);
    end
  endgenerate

  wire [OUT_BITS-1:0] count;
  lb_adder_tree #(
    .N(N_THRESH), .IN_W(1), .OUT_W(OUT_BITS), .IN_SIGNED(0)
  ) u_count (
    .in(ge), .sum(count)
  );

  assign level = inv ? TOP - count : count;
endmodule
