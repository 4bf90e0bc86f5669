`timescale 1ns/1ps
// lb_tb_sink -- testbench only (not in filelist.f): m_axis_tready with
// seeded random back-pressure. While `enable` is high, tready is low in a
// cycle with probability BP_P / 65536 (lb_tb_rand); otherwise always high.
module lb_tb_sink #(
  parameter SALT = 2
) (
  input  wire        clk,
  input  wire        rst_n,
  input  wire [31:0] seed,
  input  wire [16:0] bp_p,
  input  wire        enable,
  output reg         tready
);
  // SALT is checked by lb_tb_rand, which takes it as is
  wire pause;
  lb_tb_rand #(.SALT(SALT)) u_rand (.clk(clk), .seed(seed), .p(enable ? bp_p : 17'd0), .pause(pause));

  initial tready = 1'b0;
  always @(posedge clk) tready <= rst_n && !pause;
endmodule
