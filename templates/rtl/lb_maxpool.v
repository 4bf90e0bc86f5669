`timescale 1ns/1ps
// lb_maxpool -- streaming max-pool on integer levels (codes compared as
// unsigned integers; for bipolar codes bit 1 = +1 > bit 0 = -1, so the
// unsigned maximum is right for every level format).
//
// Streams (NHWC, element i of a beat at [i*E +: E]):
//   input : a frame of IN_H x IN_W pixels, row-major, each pixel's C channels
//           in order, as IN_H*IN_W*CF beats of PE elements (CF = C/PE);
//           frames are counted (there is no s_axis tlast).
//   output: OUT_H x OUT_W pixels the same way, OUT_H*OUT_W*CF beats,
//           m_axis_tlast on the last beat of each frame;
//           OUT_H = (IN_H - K)/S + 1, OUT_W likewise (floor: trailing rows and
//           columns that do not fill a window are read and dropped), element
//           (oy, ox, c) = max over ky, kx < K of input (oy*S+ky, ox*S+kx, c).
//   Windows must not overlap: S >= K (S == K is torch's default; S > K skips
//   the rows and columns between windows).
//
// Memory: the running maxima of one output row, OUT_W*CF words of PE*E bits
// (asynchronous read: LUT RAM; none when K == 1). Each in-window beat reads
// its output pixel's word, takes the lane-wise maximum with the beat (or
// the beat alone at the window's first pixel) and writes it back; at the
// window's last pixel the maximum goes to the output instead.
//
// Timing: one input beat per cycle; an output beat leaves the cycle after
// the input beat that completes it (registered output, two-entry skid
// buffer). A frame takes IN_H*IN_W*CF cycles, frames back to back.
// s_axis_tready depends on registers only (the skid buffer not holding a
// stalled beat), never combinationally on m_axis_tready.
module lb_maxpool #(
  parameter C    = 1,   // channels
  parameter IN_H = 4,   // input rows
  parameter IN_W = 4,   // input columns
  parameter K    = 2,   // pool size (K x K)
  parameter S    = 2,   // stride, S >= K
  parameter PE   = 1,   // elements per beat (divides C)
  parameter E    = 1    // bits per element
) (
  input  wire            clk,
  input  wire            rst_n,
  input  wire [PE*E-1:0] s_axis_tdata,
  input  wire            s_axis_tvalid,
  output wire            s_axis_tready,
  output wire [PE*E-1:0] m_axis_tdata,
  output wire            m_axis_tvalid,
  input  wire            m_axis_tready,
  output wire            m_axis_tlast
);
  // ---- parameter checks: a failing check instantiates a module that does
  // ---- not exist, so elaboration stops with its name as the message.
  generate
    if (C < 1 || IN_H < 1 || IN_W < 1 || K < 1 || PE < 1 || E < 1) begin : g_err_size
      lb_maxpool_error_C_IN_H_IN_W_K_PE_E_must_be_positive u_err ();
    end
    if (S < K) begin : g_err_stride
      lb_maxpool_error_overlapping_windows_unsupported_need_S_ge_K u_err ();
    end
    if (PE >= 1 && C % PE != 0) begin : g_err_pe
      lb_maxpool_error_PE_must_divide_C u_err ();
    end
    if (IN_H < K || IN_W < K) begin : g_err_out
      lb_maxpool_error_input_smaller_than_K u_err ();
    end
  endgenerate

  // ---- derived sizes ---------------------------------------------------------
  localparam integer CF    = C / PE;                 // beats per pixel
  localparam integer OUT_H = (IN_H - K) / S + 1;
  localparam integer OUT_W = (IN_W - K) / S + 1;
  localparam integer OXE   = (IN_W - 1) / S;          // window column of the last input column
  localparam integer KXE   = (IN_W - 1) % S;          // its position in the stride
  localparam integer OYE   = (IN_H - 1) / S;
  localparam integer KYE   = (IN_H - 1) % S;
  localparam integer IW    = PE * E;
  localparam integer DEPTH = OUT_W * CF;              // running maxima, words
  localparam integer AW    = (DEPTH > 1) ? $clog2(DEPTH) : 1;
  localparam integer CFW   = (CF > 1) ? $clog2(CF) : 1;
  localparam integer KW    = (S > 1) ? $clog2(S) : 1;
  localparam integer OXW   = (OXE > 0) ? $clog2(OXE + 1) : 1;
  localparam integer OYW   = (OYE > 0) ? $clog2(OYE + 1) : 1;

  localparam integer CF_L = CF - 1, S_L = S - 1, K_L = K - 1, K_I = K;
  localparam integer OXW_L = OUT_W - 1, OYH_L = OUT_H - 1, OW_I = OUT_W, OH_I = OUT_H;
  localparam [CFW-1:0] CF_LAST = CF_L[CFW-1:0];
  localparam [AW-1:0]  A_BACK  = CF_L[AW-1:0];        // back to the pixel's first word
  localparam [KW-1:0]  S_LAST  = S_L[KW-1:0];
  localparam [KW-1:0]  K_LAST  = K_L[KW-1:0];
  localparam [KW-1:0]  K_C     = K_I[KW-1:0];
  localparam [KW-1:0]  KX_END  = KXE[KW-1:0];
  localparam [KW-1:0]  KY_END  = KYE[KW-1:0];
  localparam [OXW-1:0] OX_END  = OXE[OXW-1:0];
  localparam [OYW-1:0] OY_END  = OYE[OYW-1:0];
  localparam [OXW-1:0] OX_LAST = OXW_L[OXW-1:0];
  localparam [OYW-1:0] OY_LAST = OYH_L[OYW-1:0];
  localparam [OXW-1:0] OX_N    = OW_I[OXW-1:0];
  localparam [OYW-1:0] OY_N    = OH_I[OYW-1:0];

  // ---- input position ----------------------------------------------------------
  reg  [CFW-1:0] cf;               // channel fold
  reg  [KW-1:0]  kx, ky;           // position inside the stride
  reg  [OXW-1:0] ox;               // window column / row
  reg  [OYW-1:0] oy;

  wire           skid_ready;       // the output register slice can take a beat
  wire fire = s_axis_tvalid && skid_ready;
  assign s_axis_tready = skid_ready;

  wire e_cf  = (cf == CF_LAST);                      // last beat of a pixel
  wire e_kx  = e_cf && (kx == S_LAST);               // ... of a stride period
  wire e_row = e_cf && (ox == OX_END) && (kx == KX_END);
  wire e_frm = e_row && (oy == OY_END) && (ky == KY_END);

  wire col_k, row_k, col_o, row_o;                   // inside a window
  wire adv;                                          // a window column follows
  generate
    if (K == S) begin : g_kk
      assign col_k = 1'b1;
      assign row_k = 1'b1;
    end else begin : g_ks
      assign col_k = (kx < K_C);
      assign row_k = (ky < K_C);
    end
    if (OUT_W == OXE + 1) begin : g_ow
      assign col_o = 1'b1;
    end else begin : g_ow_trail
      assign col_o = (ox < OX_N);
    end
    if (OUT_W > 1) begin : g_adv
      assign adv = (ox < OX_LAST);
    end else begin : g_adv1
      assign adv = 1'b0;
    end
    if (OUT_H == OYE + 1) begin : g_oh
      assign row_o = 1'b1;
    end else begin : g_oh_trail
      assign row_o = (oy < OY_N);
    end
  endgenerate

  wire in_win = col_k && row_k && col_o && row_o;
  wire first  = (kx == {KW{1'b0}}) && (ky == {KW{1'b0}});
  wire last   = (kx == K_LAST) && (ky == K_LAST);
  wire emit   = fire && in_win && last;
  wire tlast  = (ox == OX_LAST) && (oy == OY_LAST) && e_cf;

  always @(posedge clk) begin
    if (!rst_n) begin
      cf <= {CFW{1'b0}};
      kx <= {KW{1'b0}};
      ox <= {OXW{1'b0}};
    end else if (fire) begin
      cf <= e_cf ? {CFW{1'b0}} : cf + 1'b1;
      if (e_row) begin
        kx <= {KW{1'b0}};
        ox <= {OXW{1'b0}};
      end else if (e_kx) begin
        kx <= {KW{1'b0}};
        ox <= ox + 1'b1;
      end else if (e_cf) begin
        kx <= kx + 1'b1;
      end
    end
  end

  always @(posedge clk) begin
    if (!rst_n) begin
      ky <= {KW{1'b0}};
      oy <= {OYW{1'b0}};
    end else if (fire && e_row) begin
      if (e_frm) begin
        ky <= {KW{1'b0}};
        oy <= {OYW{1'b0}};
      end else if (ky == S_LAST) begin
        ky <= {KW{1'b0}};
        oy <= oy + 1'b1;
      end else begin
        ky <= ky + 1'b1;
      end
    end
  end

  // ---- running maxima ------------------------------------------------------------
  wire [IW-1:0] m;                 // the maximum so far, this beat included
  generate
    if (K > 1) begin : g_mem
      reg  [AW-1:0] a;             // running-maximum word ox*CF + cf
      reg  [IW-1:0] mem [0:DEPTH-1];
      wire [IW-1:0] acc = mem[a];
      genvar p;
      for (p = 0; p < PE; p = p + 1) begin : g_lane
        wire [E-1:0] x = s_axis_tdata[p*E +: E];
        wire [E-1:0] y = acc[p*E +: E];
        assign m[p*E +: E] = (first || x > y) ? x : y;
      end
      always @(posedge clk) begin
        if (fire && in_win) mem[a] <= m;
      end
      // address: +1 inside a pixel; at a pixel's end back to its first word
      // (next pixel of the same window), on to the next window's words, or
      // to 0 at the end of a row; the columns after the last window keep
      // the last window's (unused) address
      always @(posedge clk) begin
        if (!rst_n) a <= {AW{1'b0}};
        else if (fire) begin
          if (e_row)                         a <= {AW{1'b0}};
          else if (!e_cf)                    a <= a + 1'b1;
          else if (e_kx && adv)              a <= a + 1'b1;
          else                               a <= a - A_BACK;
        end
      end
    end else begin : g_nomem
      assign m = s_axis_tdata;     // every window is one pixel
      wire unused_k1 = &{1'b0, first, adv};
    end
  endgenerate

  // ---- output: a two-entry register slice (lb_axis_skid); every output is a register
  wire [IW:0] m_data;
  lb_axis_skid #(
    .WIDTH(IW + 1)
  ) u_skid (
    .clk(clk), .rst_n(rst_n),
    .s_axis_tdata({tlast, m}), .s_axis_tvalid(emit), .s_axis_tready(skid_ready),
    .m_axis_tdata(m_data), .m_axis_tvalid(m_axis_tvalid), .m_axis_tready(m_axis_tready)
  );
  assign m_axis_tdata = m_data[IW-1:0];
  assign m_axis_tlast = m_data[IW];
endmodule
