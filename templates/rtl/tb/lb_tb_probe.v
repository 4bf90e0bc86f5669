`timescale 1ns/1ps
// lb_tb_probe -- testbench only (not in filelist.f): records one AXI4-Stream.
//
// On every rising edge with tvalid and tready high (out of reset) it writes
// the beat to FILE as one hex line (Python's scoreboard reads it back after
// the run); with LAST = 1 also tlast and the cycle number, for m_axis.
// The values are sampled before the edge's nonblocking updates, i.e. the
// beat the edge transfers, in Icarus and in Verilator alike.
module lb_tb_probe #(
  parameter W    = 8,
  parameter LAST = 0,
  parameter FILE = "probe.hex"
) (
  input  wire         clk,
  input  wire         rst_n,
  input  wire [W-1:0] tdata,
  input  wire         tvalid,
  input  wire         tready,
  input  wire         tlast,
  input  wire [63:0]  cycle,
  output wire         fire
);
  generate
    if (W < 1 || (LAST != 0 && LAST != 1)) begin : g_err
      initial $display("lb_tb_probe %s: W = %0d must be >= 1, LAST = %0d must be 0 or 1", FILE, W, LAST);
      lb_tb_probe_error_W_or_LAST u_err ();
    end
  endgenerate

  integer fd;
  initial begin
    fd = $fopen(FILE, "w");
    if (fd == 0) begin
      $display("lb_tb_probe: cannot open %s for writing", FILE);
      $finish;
    end
  end

  assign fire = rst_n && tvalid && tready;
  always @(posedge clk) begin
    if (fire) begin
      if (LAST) $fwrite(fd, "%h %0d %0d\n", tdata, tlast, cycle);
      else      $fwrite(fd, "%h\n", tdata);
    end
  end
endmodule
