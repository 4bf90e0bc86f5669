`timescale 1ns/1ps
// lb_tb_rand -- testbench only (not in filelist.f): a seeded pause pattern.
//
// A 32-bit xorshift generator advances on every rising clock edge; `pause`
// is high in a cycle with probability P / 65536 (P = 0: never). Each
// instance mixes the run's `seed` with its own SALT, so the source and the
// sink of one run draw independent patterns, and the same seed gives the
// same pattern in Icarus and in Verilator (plain two-state arithmetic).
module lb_tb_rand #(
  parameter SALT = 1
) (
  input  wire        clk,
  input  wire [31:0] seed,
  input  wire [16:0] p,        // pause probability * 65536, 0..65535
  output wire        pause
);
  generate
    if (SALT < 1) begin : g_err_salt
      initial $display("lb_tb_rand: SALT = %0d, must be >= 1", SALT);
      lb_tb_rand_error_SALT_must_be_positive u_err ();
    end
  endgenerate

  localparam [31:0] SALT_W = SALT;
  reg [31:0] state;
  reg        seeded = 1'b0;
  wire [31:0] s0 = seeded ? state : ((seed ^ (SALT_W * 32'h9E3779B9)) | 32'h1);
  wire [31:0] s1 = s0 ^ (s0 << 13);
  wire [31:0] s2 = s1 ^ (s1 >> 17);
  wire [31:0] s3 = s2 ^ (s2 << 5);

  assign pause = ({1'b0, s0[31:16]} < p);

  always @(posedge clk) begin
    state  <= s3;
    seeded <= 1'b1;
  end
endmodule
