`timescale 1ns/1ps
// lb_rom -- read-only memory initialised from a $readmemh file.
//
// One registered read port with a clock enable, the template synthesis tools
// infer as block RAM (or LUT RAM for small depths). INIT_FILE is a bare file
// name: the simulator and synthesis run in the directory that holds it.
// The output register is not reset (block RAM output latches have no reset);
// the caller qualifies q with its own valid bit.
module lb_rom #(
  parameter DEPTH     = 2,     // words
  parameter WIDTH     = 8,     // bits per word
  parameter ADDR_W    = 1,     // address bits, 2^ADDR_W >= DEPTH
  parameter INIT_FILE = ""     // empty: not initialised
) (
  input  wire              clk,
  input  wire              en,
  input  wire [ADDR_W-1:0] addr,
  output reg  [WIDTH-1:0]  q
);
  // ---- parameter checks (elaboration fails on a missing module) --------
  generate
    if (DEPTH < 1 || WIDTH < 1 || ADDR_W < 1) begin : g_err_size
      lb_rom_error_DEPTH_WIDTH_ADDR_W_must_be_positive u_err ();
    end
    if ((DEPTH - 1) >> ADDR_W != 0) begin : g_err_addr
      lb_rom_error_ADDR_W_too_small_for_DEPTH u_err ();
    end
  endgenerate

  reg [WIDTH-1:0] mem [0:DEPTH-1];

  generate
    if (INIT_FILE != "") begin : g_init
      initial $readmemh(INIT_FILE, mem);
    end
  endgenerate

  always @(posedge clk) begin
    if (en) q <= mem[addr];
  end
endmodule
