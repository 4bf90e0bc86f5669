// lbgen HLS library: everything a generated top needs.
//
//   lbgen_common.hpp      number kinds (bipolar, uint_k<B>, int_k<B>, log2_k<B>,
//                         ternary_k<2>, hetero<N, K...>), packed-word helpers
//   lbgen_pe.hpp          products: XnorPopcount, AddSub, MulAdd, ShiftAdd, MaskedPlanes,
//                         MaskedAddSub
//   lbgen_activation.hpp  MultiThreshold, RawAccumulator
//   lbgen_mvau.hpp        the MVAU engine, lbgen::mvau<CFG>(...)
//   lbgen_stream.hpp      lbgen::width_convert<IN, OUT, ELEM_BITS, FRAME>(...)
//   lbgen_topk.hpp        lbgen::topk<C>(...): the top-K class indices after the last layer
//   lbgen_csim.hpp        C-simulation only: hex I/O, per-layer trace taps, RomImage
#ifndef LBGEN_HPP
#define LBGEN_HPP

#include "lbgen_common.hpp"
#include "lbgen_pe.hpp"
#include "lbgen_activation.hpp"
#include "lbgen_mvau.hpp"
#include "lbgen_stream.hpp"
#include "lbgen_conv.hpp"
#include "lbgen_topk.hpp"

#endif  // LBGEN_HPP
