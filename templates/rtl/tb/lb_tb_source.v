`timescale 1ns/1ps
// lb_tb_source -- testbench only (not in filelist.f): drives an AXI4-Stream
// from a file of beats, one hex word per line (read with $fscanf as the
// beats are taken, so any number of frames needs no memory).
//
// Phase 1 offers BEATS1 beats; in a cycle with no beat on offer, a new one
// is offered unless lb_tb_rand pauses (probability GAP_P / 65536). A beat on
// offer stays on offer until it is taken (AXI4-Stream). Phase 2 (when `go2`
// rises) offers the next BEATS2 beats back to back, without gaps.
// The file is named by the plusarg +input=<path> (default "input.hex").
module lb_tb_source #(
  parameter W    = 8,
  parameter SALT = 1
) (
  input  wire         clk,
  input  wire         rst_n,
  input  wire [31:0]  seed,
  input  wire [16:0]  gap_p,
  input  wire [31:0]  beats1,
  input  wire [31:0]  beats2,
  input  wire         go2,
  output reg  [W-1:0] m_axis_tdata,
  output reg          m_axis_tvalid,
  input  wire         m_axis_tready,
  output reg  [31:0]  sent
);
  generate
    if (W < 1) begin : g_err            // SALT: checked by lb_tb_rand
      initial $display("lb_tb_source: W = %0d, must be >= 1", W);
      lb_tb_source_error_W_must_be_positive u_err ();
    end
  endgenerate

  wire pause;
  lb_tb_rand #(.SALT(SALT)) u_rand (.clk(clk), .seed(seed), .p(go2 ? 17'd0 : gap_p), .pause(pause));

  reg [W-1:0] word;
  integer     got;
  wire        take  = m_axis_tvalid && m_axis_tready;
  wire [31:0] after = sent + (take ? 32'd1 : 32'd0);
  wire [31:0] limit = go2 ? beats1 + beats2 : beats1;

  reg [8*1024-1:0] path;
  integer          fd;
  initial begin
    if (!$value$plusargs("input=%s", path)) path = "input.hex";
    fd = $fopen(path, "r");
    if (fd == 0) begin
      $display("lb_tb_source: cannot open the beat file %0s", path);
      $finish;
    end
    m_axis_tdata  = {W{1'b0}};
    m_axis_tvalid = 1'b0;
    sent          = 32'd0;
  end

  always @(posedge clk) begin
    if (rst_n) begin
      sent <= after;
      if (!m_axis_tvalid || take) begin
        if (after < limit && !pause) begin
          got = $fscanf(fd, "%h\n", word);
          if (got != 1) begin
            $display("lb_tb_source: the beat file ends after %0d beats, %0d expected", after, limit);
            $finish;
          end
          m_axis_tdata  <= word;
          m_axis_tvalid <= 1'b1;
        end else begin
          m_axis_tvalid <= 1'b0;
        end
      end
    end
  end
endmodule
