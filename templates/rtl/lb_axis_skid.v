`timescale 1ns/1ps
// lb_axis_skid -- two-entry AXI4-Stream register slice (skid buffer).
//
// Full throughput; every output is a register and s_axis_tready depends on
// state only, so the slice breaks the combinational tready path.
module lb_axis_skid #(
  parameter WIDTH = 8
) (
  input  wire             clk,
  input  wire             rst_n,
  input  wire [WIDTH-1:0] s_axis_tdata,
  input  wire             s_axis_tvalid,
  output wire             s_axis_tready,
  output wire [WIDTH-1:0] m_axis_tdata,
  output wire             m_axis_tvalid,
  input  wire             m_axis_tready
);
  generate
    if (WIDTH < 1) begin : g_err_size
      lb_axis_skid_error_WIDTH_must_be_positive u_err ();
    end
  endgenerate

  reg [WIDTH-1:0] main_d, skid_d;
  reg             main_v, skid_v;

  // the main register can take a new beat when it is empty or being read
  wire main_load = m_axis_tready || !main_v;

  assign s_axis_tready = !skid_v;
  assign m_axis_tvalid = main_v;
  assign m_axis_tdata  = main_d;

  always @(posedge clk) begin
    if (!rst_n) begin
      main_v <= 1'b0;
      skid_v <= 1'b0;
    end else if (main_load) begin
      main_v <= skid_v || s_axis_tvalid;
      skid_v <= 1'b0;
    end else if (s_axis_tvalid && !skid_v) begin
      skid_v <= 1'b1;
    end
  end

  always @(posedge clk) begin
    if (main_load) begin
      main_d <= skid_v ? skid_d : s_axis_tdata;
    end
    if (!main_load && !skid_v) begin
      skid_d <= s_axis_tdata;
    end
  end
endmodule
