`timescale 1ns/1ps
// lb_axis_dwc -- AXI4-Stream width converter, IN_N -> OUT_N elements of W bits.
//
// Elements keep their order (element i of a beat at [i*W +: W]); beats are
// regrouped. IN_N and OUT_N need not divide each other, but both must divide
// the frame length FRAME, so output beats never straddle a frame and no
// flush is needed between frames.
//
// Implementation: an element buffer of CAP elements with a fill count.
// Output = the lowest OUT_N elements, valid when count >= OUT_N; an input beat
// is appended above the remaining elements, accepted when count <= CAP-IN_N.
// Both handshake outputs depend on the count register only. CAP is the
// smallest capacity at which the narrower side moves a beat every cycle
// (full throughput): upsizing needs an input every cycle, so room for IN_N
// while up to OUT_N+IN_N-1 wait; downsizing needs an output every cycle, so
// an input must be taken while 2*OUT_N-1 wait. The count is always a
// multiple of G = gcd(IN_N, OUT_N), hence
//   CAP = IN_N + OUT_N + min(IN_N, OUT_N) - G.
module lb_axis_dwc #(
  parameter W     = 1,   // bits per element
  parameter IN_N  = 1,   // elements per input beat
  parameter OUT_N = 1,   // elements per output beat
  parameter FRAME = 1    // elements per frame
) (
  input  wire               clk,
  input  wire               rst_n,
  input  wire [IN_N*W-1:0]  s_axis_tdata,
  input  wire               s_axis_tvalid,
  output wire               s_axis_tready,
  output wire [OUT_N*W-1:0] m_axis_tdata,
  output wire               m_axis_tvalid,
  input  wire               m_axis_tready
);
  function integer gcd;
    input [31:0] a;
    input [31:0] b;
    integer x, y, t, i;
    begin
      x = a;
      y = b;
      for (i = 0; i < 64 && y != 0; i = i + 1) begin
        t = x % y;
        x = y;
        y = t;
      end
      gcd = x;
    end
  endfunction

  generate
    if (W < 1 || IN_N < 1 || OUT_N < 1 || FRAME < 1) begin : g_err_size
      lb_axis_dwc_error_sizes_must_be_positive u_err ();
    end
    if (FRAME % IN_N != 0) begin : g_err_in
      lb_axis_dwc_error_IN_N_must_divide_FRAME u_err ();
    end
    if (FRAME % OUT_N != 0) begin : g_err_out
      lb_axis_dwc_error_OUT_N_must_divide_FRAME u_err ();
    end
  endgenerate

  localparam MIN_N    = (IN_N < OUT_N) ? IN_N : OUT_N;
  localparam CAP      = IN_N + OUT_N + MIN_N - gcd(IN_N, OUT_N);
  localparam CW       = $clog2(CAP + 1);
  localparam integer  IN_I   = IN_N;
  localparam integer  OUT_I  = OUT_N;
  localparam integer  ROOM_I = CAP - IN_N;
  localparam [CW-1:0] IN_C   = IN_I[CW-1:0];
  localparam [CW-1:0] OUT_C  = OUT_I[CW-1:0];
  localparam [CW-1:0] ROOM   = ROOM_I[CW-1:0];

  reg [CAP*W-1:0] buf_q;
  reg [CW-1:0]    count;

  assign m_axis_tvalid = (count >= OUT_C);
  assign s_axis_tready = (count <= ROOM);
  assign m_axis_tdata  = buf_q[OUT_N*W-1:0];

  wire out_fire = m_axis_tvalid && m_axis_tready;
  wire in_fire  = s_axis_tvalid && s_axis_tready;

  // elements left after this cycle's output; the input beat goes above them
  wire [CW-1:0] base = out_fire ? count - OUT_C : count;
  wire [31:0]   base32 = {{(32-CW){1'b0}}, base};

  reg [CAP*W-1:0] buf_d;
  integer k;
  always @* begin
    buf_d = out_fire ? (buf_q >> (OUT_N * W)) : buf_q;
    if (in_fire) begin
      for (k = 0; k < IN_N; k = k + 1) begin
        buf_d[(base32 + k) * W +: W] = s_axis_tdata[k * W +: W];
      end
    end
  end

  always @(posedge clk) begin
    buf_q <= buf_d;
  end

  always @(posedge clk) begin
    if (!rst_n) begin
      count <= {CW{1'b0}};
    end else begin
      count <= base + (in_fire ? IN_C : {CW{1'b0}});
    end
  end

endmodule
