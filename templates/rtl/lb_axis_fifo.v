`timescale 1ns/1ps
// lb_axis_fifo -- synchronous AXI4-Stream FIFO of DEPTH beats.
//
// Any DEPTH >= 1. Storage is a memory array with an asynchronous read port
// (LUT RAM); s_axis_tready and m_axis_tvalid come from the fill count
// register only, so the FIFO breaks the combinational handshake paths.
// Full throughput: a beat can enter and another leave in the same cycle.
module lb_axis_fifo #(
  parameter WIDTH = 8,
  parameter DEPTH = 2
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
    if (WIDTH < 1 || DEPTH < 1) begin : g_err_size
      lb_axis_fifo_error_WIDTH_DEPTH_must_be_positive u_err ();
    end
  endgenerate

  localparam AW = (DEPTH > 1) ? $clog2(DEPTH) : 1;
  localparam CW = $clog2(DEPTH + 1);
  localparam integer  LAST_I   = DEPTH - 1;
  localparam integer  DEPTH_I  = DEPTH;
  localparam [AW-1:0] PTR_LAST = LAST_I[AW-1:0];
  localparam [CW-1:0] FULL     = DEPTH_I[CW-1:0];

  reg [WIDTH-1:0] mem [0:DEPTH-1];
  reg [AW-1:0]    wr_ptr, rd_ptr;
  reg [CW-1:0]    count;

  assign s_axis_tready = (count != FULL);
  assign m_axis_tvalid = (count != {CW{1'b0}});
  assign m_axis_tdata  = mem[rd_ptr];

  wire wr = s_axis_tvalid && s_axis_tready;
  wire rd = m_axis_tvalid && m_axis_tready;

  always @(posedge clk) begin
    if (wr) mem[wr_ptr] <= s_axis_tdata;
  end

  always @(posedge clk) begin
    if (!rst_n) begin
      wr_ptr <= {AW{1'b0}};
      rd_ptr <= {AW{1'b0}};
      count  <= {CW{1'b0}};
    end else begin
      if (wr) wr_ptr <= (wr_ptr == PTR_LAST) ? {AW{1'b0}} : wr_ptr + 1'b1;
      if (rd) rd_ptr <= (rd_ptr == PTR_LAST) ? {AW{1'b0}} : rd_ptr + 1'b1;
      if (wr && !rd)      count <= count + 1'b1;
      else if (rd && !wr) count <= count - 1'b1;
    end
  end
endmodule
