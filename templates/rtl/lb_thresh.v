`timescale 1ns/1ps
// lb_thresh -- multi-threshold activation of one channel (combinational).
//
//   count = number of j in 0..N_THRESH-1 with acc >= thr[j]   (signed compare)
//   level = inv ? N_THRESH - count : count
//
// acc and every threshold are signed ACC_BITS; threshold j sits at
// thr[j*ACC_BITS +: ACC_BITS]. The count does not assume ascending
// thresholds. level is OUT_BITS wide, N_THRESH <= 2^OUT_BITS - 1.
//
// Each comparator works on 3-bit chunks (sign bits flipped, so the compare
// is unsigned): per chunk k, g_k = (a_k > t_k) and e_k = (a_k == t_k) are
// each one LUT6 of the six chunk bits, and a carry chain resolves them from
// the top chunk down: acc >= t is the carry out of G + (G|E) + 1 (a
// position carries exactly when g_k, and propagates exactly when e_k).
// Two LUTs per three bits instead of one per bit.
//
// BEHAVIORAL = 0 (default; what synthesis builds and the default tests
// simulate): the chunked comparators above. BEHAVIORAL = 1: the plain signed
// compare per threshold (same results; tests/test_pe_cores.py runs both).
module lb_thresh #(
  parameter ACC_BITS = 8,
  parameter N_THRESH = 1,
  parameter OUT_BITS = 1,
  parameter BEHAVIORAL = 0     // 0 chunked comparators (synthesis), 1 plain compare
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
    if (BEHAVIORAL != 0 && BEHAVIORAL != 1) begin : g_err_behavioral
      lb_thresh_error_BEHAVIORAL_must_be_0_or_1 u_err ();
    end
  endgenerate

  localparam integer        TOP_I = N_THRESH;
  localparam [OUT_BITS-1:0] TOP   = TOP_I[OUT_BITS-1:0];
  localparam NC = (ACC_BITS + 2) / 3;           // chunks
  localparam CW = 3 * NC;                       // padded width
  localparam [CW-1:0] SIGN = {{(CW-1){1'b0}}, 1'b1} << (ACC_BITS - 1);

  wire [N_THRESH-1:0] ge;
  genvar j, k;
  // chunk results, bitwise over the whole word (bit 3k of each vector is
  // chunk k)
  localparam [CW-1:0] BASE = base_bits(0);
  function [CW-1:0] base_bits;
    input [31:0] dummy;
    integer i;
    begin
      for (i = 0; i < CW; i = i + 1) base_bits[i] = (i % 3 == 0) && (dummy != 32'hffffffff);
    end
  endfunction

  generate
    if (BEHAVIORAL != 0) begin : g_word
      // the plain signed compare
      for (j = 0; j < N_THRESH; j = j + 1) begin : g_cmp
        assign ge[j] = $signed(acc) >= $signed(thr[j*ACC_BITS +: ACC_BITS]);
      end
    end else begin : g_chunk
      // acc and the thresholds zero padded to whole chunks, sign flipped
      // (offset binary)
      reg [CW-1:0] au;
      always @* begin
        au = {CW{1'b0}};
        au[ACC_BITS-1:0] = acc;
        au = au ^ SIGN;
      end

      // one process per threshold (reading the whole threshold word: it
      // wakes once per new word)
      for (j = 0; j < N_THRESH; j = j + 1) begin : g_cmp
        reg [CW-1:0] t, same, above, gtv, eqv;
        always @* begin
          t     = {CW{1'b0}};
          t[ACC_BITS-1:0] = thr[j*ACC_BITS +: ACC_BITS];
          t     = t ^ SIGN;
          same  = ~(au ^ t);
          above = au & ~t;
          gtv   = ((above >> 2) | ((same >> 2) & (above >> 1)) | ((same >> 2) & (same >> 1) & above)) & BASE;
          eqv   = (same & (same >> 1) & (same >> 2)) & BASE;
        end
        wire [NC-1:0] gt, eq;
        for (k = 0; k < NC; k = k + 1) begin : g_k
          assign gt[k] = gtv[3*k];
          assign eq[k] = eqv[3*k];
        end
        wire [NC:0] s = {1'b0, gt} + {1'b0, gt | eq} + {{NC{1'b0}}, 1'b1};
        assign ge[j] = s[NC];
        wire unused_s = &{1'b0, s[NC-1:0], gtv & ~BASE, eqv & ~BASE};
      end
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
