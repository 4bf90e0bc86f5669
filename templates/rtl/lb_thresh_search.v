`timescale 1ns/1ps
// lb_thresh_search -- multi-threshold activation of PE channels by a
// pipelined binary search: OUT_BITS comparators per channel instead of
// 2^OUT_BITS - 1, for the same thresholds and the same levels as lb_thresh.
//
// Each channel's N = 2^OUT_BITS - 1 thresholds t_0 <= .. <= t_{N-1} must be
// ascending (the IR guarantees it). Stage k (k = 0 .. OUT_BITS-1) decides
// level bit OUT_BITS-1-k: with the bits decided so far as the k-bit prefix q,
// it compares acc against
//     t_j,  j = q * 2^(OUT_BITS-k) + 2^(OUT_BITS-k-1) - 1,
// so after the last stage {q, bit} = #{j : acc >= t_j}. The output is
// level = inv ? N - count : count (a falling channel), as in lb_thresh.
//
// Memories: stage k holds 2^k thresholds per channel and fold, one ROM per
// stage and PE so that each channel can follow its own path:
//   stage k, PE p: depth NF * 2^k, address nf * 2^k + q (= {nf, q});
//   stage 0 words carry the channel's invert flag above the threshold
//   (ACC_BITS + 1 bits), the others are ACC_BITS bits.
// Their files are named after THRESH_FILE, which must end in "0_0000.mem":
// the stage digit and the four-digit decimal PE index are substituted
// (stage 2 of PE 13 of "fc1_thr0_0000.mem" is "fc1_thr2_0013.mem").
//
// Timing: nf addresses the stage-0 ROMs one cycle before acc arrives (as
// for lb_thresh's ROM in lb_mvau); every stage is one register stage on
// `en`, so the level of acc appears OUT_BITS enabled cycles later. A stage's
// comparator drives the next stage's ROM address (ROM address setup is the
// critical path; the ROMs are small and mostly LUT RAM).
module lb_thresh_search #(
  parameter PE          = 1,
  parameter NF          = 1,
  parameter NFW         = 1,     // bits of nf, 2^NFW >= NF
  parameter ACC_BITS    = 8,
  parameter OUT_BITS    = 2,
  parameter THRESH_FILE = ""       // "": ROMs not initialised
) (
  input  wire                      clk,
  input  wire                      en,
  input  wire [NFW-1:0]            nf,     // fold of the acc of the next cycle
  input  wire [PE*ACC_BITS-1:0]    acc,
  output wire [PE*OUT_BITS-1:0]    level
);
  // ---- parameter checks ------------------------------------------------
  generate
    if (PE < 1 || NF < 1 || NFW < 1 || ACC_BITS < 2) begin : g_err_size
      lb_thresh_search_error_sizes_must_be_positive u_err ();
    end
    if (OUT_BITS < 1 || OUT_BITS > 8) begin : g_err_bits
      lb_thresh_search_error_OUT_BITS_must_be_1_to_8 u_err ();
    end
    if (PE > 9999) begin : g_err_pe
      lb_thresh_search_error_PE_above_9999_has_no_file_name u_err ();
    end
    if ((NF - 1) >> NFW != 0) begin : g_err_nfw
      lb_thresh_search_error_NFW_too_small_for_NF u_err ();
    end
    /* verilator lint_off WIDTHEXPAND */
    if (THRESH_FILE != "" && (THRESH_FILE & {80{1'b1}}) != "0_0000.mem") begin : g_err_name
      lb_thresh_search_error_THRESH_FILE_must_end_in_0_0000_mem u_err ();
    end
    /* verilator lint_on WIDTHEXPAND */
  endgenerate

  localparam A = OUT_BITS;
  localparam integer        TOP_I = (1 << OUT_BITS) - 1;
  localparam [OUT_BITS-1:0] TOP   = TOP_I[OUT_BITS-1:0];

  // the file of stage k, PE p: digits added onto the '0's of THRESH_FILE.
  // The sum is as wide as the file name (at least 80 bits, checked above);
  // the 80-bit offset is zero extended to it, on purpose.
  function [79:0] name_offset;
    input [31:0] k;
    input [31:0] p;
    reg   [31:0] d3, d2, d1, d0;
    begin
      d3 = (p / 32'd1000) % 32'd10;
      d2 = (p / 32'd100) % 32'd10;
      d1 = (p / 32'd10) % 32'd10;
      d0 = p % 32'd10;
      name_offset = ({48'd0, k} << 72) + ({48'd0, d3} << 56) + ({48'd0, d2} << 48)
                  + ({48'd0, d1} << 40) + ({48'd0, d0} << 32);
    end
  endfunction

  // fold of each stage: stage k at [k*NFW +: NFW]
  reg  [A*NFW-1:0] nf_s;
  wire [(A+1)*NFW-1:0] nf_next = {nf_s, nf};
  wire unused_nf = &{1'b0, nf_next[A*NFW +: NFW]};   // the last stage addresses no ROM
  always @(posedge clk) begin
    if (en) nf_s <= nf_next[A*NFW-1:0];
  end
  genvar k, p;

  generate
    for (p = 0; p < PE; p = p + 1) begin : g_pe
      // per stage k: accumulator, decided prefix (low k bits), invert flag
      wire [A*ACC_BITS-1:0] acc_k;
      wire [A*A-1:0]        pfx_k;
      wire [A-1:0]          inv_k;
      wire [A*A-1:0]        code_k;     // {prefix, this stage's bit}
      wire [ACC_BITS:0]     q0;         // stage 0 ROM word: {inv, threshold}

      lb_rom #(
        .DEPTH(NF), .WIDTH(ACC_BITS + 1), .ADDR_W(NFW),
        /* verilator lint_off WIDTHEXPAND */
        .INIT_FILE((THRESH_FILE == "") ? "" : THRESH_FILE + name_offset(0, p))
        /* verilator lint_on WIDTHEXPAND */
      ) u_rom0 (
        .clk(clk), .en(en), .addr(nf), .q(q0)
      );
      assign acc_k[0 +: ACC_BITS] = acc[p*ACC_BITS +: ACC_BITS];
      assign pfx_k[0 +: A]        = {A{1'b0}};
      assign inv_k[0]             = q0[ACC_BITS];

      for (k = 0; k < A; k = k + 1) begin : g_stage
        wire [ACC_BITS-1:0] thr;
        wire                ge;
        if (k == 0) begin : g_t0
          assign thr = q0[ACC_BITS-1:0];
        end else begin : g_tk
          // address {fold, prefix}: the previous stage's comparator
          // (just the prefix with a single fold)
          localparam RAW = (NF == 1) ? k : NFW + k;
          wire [RAW-1:0] raddr;
          if (NF == 1) begin : g_a1
            assign raddr = code_k[(k-1)*A +: k];
          end else begin : g_an
            assign raddr = {nf_s[(k-1)*NFW +: NFW], code_k[(k-1)*A +: k]};
          end
          lb_rom #(
            .DEPTH(NF << k), .WIDTH(ACC_BITS), .ADDR_W(RAW),
            /* verilator lint_off WIDTHEXPAND */
            .INIT_FILE((THRESH_FILE == "") ? "" : THRESH_FILE + name_offset(k, p))
            /* verilator lint_on WIDTHEXPAND */
          ) u_rom (
            .clk(clk), .en(en), .addr(raddr), .q(thr)
          );
          reg [ACC_BITS-1:0] acc_r;
          reg [A-1:0]        pfx_r;
          reg                inv_r;
          always @(posedge clk) begin
            if (en) begin
              acc_r <= acc_k[(k-1)*ACC_BITS +: ACC_BITS];
              pfx_r <= code_k[(k-1)*A +: A];
              inv_r <= inv_k[k-1];
            end
          end
          assign acc_k[k*ACC_BITS +: ACC_BITS] = acc_r;
          assign pfx_k[k*A +: A]               = pfx_r;
          assign inv_k[k]                      = inv_r;
        end
        lb_thresh #(
          .ACC_BITS(ACC_BITS), .N_THRESH(1), .OUT_BITS(1)
        ) u_cmp (
          .acc(acc_k[k*ACC_BITS +: ACC_BITS]), .thr(thr), .inv(1'b0), .level(ge)
        );
        if (A > 1) begin : g_code
          assign code_k[k*A +: A] = {pfx_k[k*A +: A-1], ge};
          wire unused_pfx = &{1'b0, pfx_k[k*A + A-1]};
        end else begin : g_code1
          assign code_k[k*A +: A] = ge;
          wire unused_pfx = &{1'b0, pfx_k[k*A +: A]};
        end
      end

      reg [OUT_BITS-1:0] level_r;
      always @(posedge clk) begin
        if (en) level_r <= inv_k[A-1] ? TOP - code_k[(A-1)*A +: A] : code_k[(A-1)*A +: A];
      end
      assign level[p*OUT_BITS +: OUT_BITS] = level_r;
    end
  endgenerate
endmodule
