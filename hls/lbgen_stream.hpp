// lbgen HLS library: stream width conversion between layers.
//
//   lbgen::width_convert<IN_ELEMS, OUT_ELEMS, ELEM_BITS, FRAME_ELEMS>(in, out)
//
// turns one frame of FRAME_ELEMS elements (ELEM_BITS each) carried as
// FRAME_ELEMS/IN_ELEMS beats of IN_ELEMS elements into FRAME_ELEMS/OUT_ELEMS
// beats of OUT_ELEMS elements, element order unchanged (element i of a beat at
// bits [i*ELEM_BITS +: ELEM_BITS]). Both sizes must divide the frame; they need
// not divide each other. One frame per call, one flattened loop at II=1 that
// reads at most one beat and writes at most one beat per iteration:
//
//   IN == OUT          copy
//   IN % OUT == 0      down-size: one read, IN/OUT writes
//   OUT % IN == 0      up-size: OUT/IN reads, one write
//   otherwise          a shift buffer of IN+OUT-1 elements: read while it holds
//                      fewer than OUT elements, write whenever it holds OUT
#ifndef LBGEN_STREAM_HPP
#define LBGEN_STREAM_HPP

#include "lbgen_common.hpp"

namespace lbgen {

namespace detail {

// Iterations of the general converter for one frame (each reads and/or writes).
constexpr unsigned width_convert_iterations(unsigned in_elems, unsigned out_elems, unsigned frame) {
    unsigned fill = 0, written = 0, it = 0;
    while (written < frame) {
        if (fill < out_elems) fill += in_elems;
        if (fill >= out_elems) {
            fill -= out_elems;
            written += out_elems;
        }
        ++it;
    }
    return it;
}

template <unsigned IN, unsigned OUT, unsigned EB, unsigned FRAME, int MODE>
struct width_converter;

// IN == OUT: copy
template <unsigned IN, unsigned OUT, unsigned EB, unsigned FRAME>
struct width_converter<IN, OUT, EB, FRAME, 0> {
    static void run(hls::stream<ap_uint<IN * EB> > &in, hls::stream<ap_uint<OUT * EB> > &out) {
#pragma HLS INLINE
        for (unsigned i = 0; i < FRAME / IN; i++) {
#pragma HLS PIPELINE II=1
            out.write(in.read());
        }
    }
};

// IN = R * OUT: one input beat gives R output beats
template <unsigned IN, unsigned OUT, unsigned EB, unsigned FRAME>
struct width_converter<IN, OUT, EB, FRAME, 1> {
    static void run(hls::stream<ap_uint<IN * EB> > &in, hls::stream<ap_uint<OUT * EB> > &out) {
#pragma HLS INLINE
        const unsigned R = IN / OUT;
        ap_uint<IN * EB> buf = 0;
        unsigned r = 0;
        for (unsigned i = 0; i < FRAME / OUT; i++) {
#pragma HLS PIPELINE II=1
            if (r == 0) buf = in.read();
            out.write(buf.range(OUT * EB - 1, 0));
            buf = buf >> (OUT * EB);
            r = (r == R - 1) ? 0 : r + 1;
        }
    }
};

// OUT = R * IN: R input beats give one output beat
template <unsigned IN, unsigned OUT, unsigned EB, unsigned FRAME>
struct width_converter<IN, OUT, EB, FRAME, 2> {
    static void run(hls::stream<ap_uint<IN * EB> > &in, hls::stream<ap_uint<OUT * EB> > &out) {
#pragma HLS INLINE
        const unsigned R = OUT / IN;
        ap_uint<OUT * EB> buf = 0;
        unsigned r = 0;
        for (unsigned i = 0; i < FRAME / IN; i++) {
#pragma HLS PIPELINE II=1
            // shift in from the top: after R reads the first beat is lowest
            buf = buf >> (IN * EB);
            buf.range(OUT * EB - 1, (OUT - IN) * EB) = in.read();
            if (r == R - 1) {
                out.write(buf);
                r = 0;
            } else {
                r++;
            }
        }
    }
};

// neither divides the other: shift buffer
template <unsigned IN, unsigned OUT, unsigned EB, unsigned FRAME>
struct width_converter<IN, OUT, EB, FRAME, 3> {
    static void run(hls::stream<ap_uint<IN * EB> > &in, hls::stream<ap_uint<OUT * EB> > &out) {
#pragma HLS INLINE
        const unsigned BUF_BITS = (IN + OUT - 1) * EB;
        const unsigned ITER = width_convert_iterations(IN, OUT, FRAME);
        ap_uint<BUF_BITS> buf = 0;  // elements [0, fill) valid, the rest zero
        unsigned fill = 0;
        for (unsigned i = 0; i < ITER; i++) {
#pragma HLS PIPELINE II=1
            if (fill < OUT) {
                ap_uint<BUF_BITS> x = in.read();
                buf |= x << (fill * EB);
                fill += IN;
            }
            if (fill >= OUT) {
                out.write(buf.range(OUT * EB - 1, 0));
                buf = buf >> (OUT * EB);
                fill -= OUT;
            }
        }
    }
};

}  // namespace detail

template <unsigned IN_ELEMS, unsigned OUT_ELEMS, unsigned ELEM_BITS, unsigned FRAME_ELEMS>
void width_convert(hls::stream<ap_uint<IN_ELEMS * ELEM_BITS> > &in, hls::stream<ap_uint<OUT_ELEMS * ELEM_BITS> > &out) {
#pragma HLS INLINE off
    static_assert(IN_ELEMS >= 1 && OUT_ELEMS >= 1 && ELEM_BITS >= 1, "width_convert: empty beats");
    static_assert(FRAME_ELEMS % IN_ELEMS == 0, "width_convert: IN_ELEMS must divide the frame");
    static_assert(FRAME_ELEMS % OUT_ELEMS == 0, "width_convert: OUT_ELEMS must divide the frame");
    const int MODE = IN_ELEMS == OUT_ELEMS ? 0 : IN_ELEMS % OUT_ELEMS == 0 ? 1 : OUT_ELEMS % IN_ELEMS == 0 ? 2 : 3;
    detail::width_converter<IN_ELEMS, OUT_ELEMS, ELEM_BITS, FRAME_ELEMS, MODE>::run(in, out);
}

}  // namespace lbgen

#endif  // LBGEN_STREAM_HPP
