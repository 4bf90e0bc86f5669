// lbgen HLS library: what an MVAU does with a finished accumulator.
//
//   MultiThreshold<PE, T, ACC_BITS, OUT_BITS>  hidden layers
//       level = count_j(acc >= t_j); level = T - count where the channel's invert
//       flag is set. T = 2^OUT_BITS - 1 thresholds per channel (bipolar: T = 1,
//       level bit 1 means +1). The thresholds are PE ROMs of NF words, one word
//       per channel (finn-hlslib style, m_thresholds[PE][NF]): word rom[p][nf]
//       belongs to channel nf*PE + p; its element j (ACC_BITS wide, two's
//       complement) is threshold j, bit T*ACC_BITS its invert flag. The array is
//       partitioned completely in dimension 1 (lbgen_top.cpp), so the PE lanes
//       read their words in the same cycle, and no word is wider than one
//       channel's threshold set.
//   RawAccumulator<PE, ACC_BITS>               the output layer
//       emits the accumulator itself, ACC_BITS two's complement.
//
// Interface used by the MVAU:
//   OUT_BITS, N_THRESHOLDS, word_t (one channel's ROM word),
//   activate(acc, word) -> ap_uint<OUT_BITS>
#ifndef LBGEN_ACTIVATION_HPP
#define LBGEN_ACTIVATION_HPP

#include "lbgen_common.hpp"

namespace lbgen {

template <unsigned PE, unsigned T, unsigned ACC_BITS, unsigned OUT_BITS_>
struct MultiThreshold {
    static_assert(OUT_BITS_ >= 1 && OUT_BITS_ <= 16, "MultiThreshold: 1..16 output bits");
    static_assert(T == (1u << OUT_BITS_) - 1, "MultiThreshold: T must be 2^OUT_BITS - 1");
    static_assert(ACC_BITS >= 2 && ACC_BITS <= 64, "MultiThreshold: ACC_BITS 2..64");
    static const unsigned OUT_BITS = OUT_BITS_;
    static const unsigned N_THRESHOLDS = T;
    static const unsigned WORD_BITS = T * ACC_BITS + 1;  // one channel
    typedef ap_uint<WORD_BITS> word_t;

    static ap_uint<OUT_BITS> activate(const ap_int<ACC_BITS> &acc, const word_t &word) {
#pragma HLS INLINE
        ap_uint<ACC_BITS> t[T];
#pragma HLS ARRAY_PARTITION variable=t complete dim=1
        unpack<ACC_BITS, T>(word, t);
        const bool invert = word[T * ACC_BITS];
        return levels(acc, t, invert);
    }

    // the compare of activate on a channel's unpacked thresholds and invert flag
    static ap_uint<OUT_BITS> levels(const ap_int<ACC_BITS> &acc, const ap_uint<ACC_BITS> t[T], bool invert) {
#pragma HLS INLINE
        ap_uint<OUT_BITS + 1> count = 0;
        for (unsigned j = 0; j < T; j++) {
#pragma HLS UNROLL
            count += (acc >= ap_int<ACC_BITS>(t[j])) ? 1 : 0;
        }
        const ap_uint<OUT_BITS + 1> level = invert ? ap_uint<OUT_BITS + 1>(T - count) : count;
        return level;
    }
};

template <unsigned PE, unsigned ACC_BITS>
struct RawAccumulator {
    static_assert(ACC_BITS >= 2 && ACC_BITS <= 64, "RawAccumulator: ACC_BITS 2..64");
    static const unsigned OUT_BITS = ACC_BITS;
    static const unsigned N_THRESHOLDS = 0;
    static const unsigned WORD_BITS = 1;
    typedef ap_uint<1> word_t;  // no ROM

    static ap_uint<OUT_BITS> activate(const ap_int<ACC_BITS> &acc, const word_t &) {
#pragma HLS INLINE
        return ap_uint<OUT_BITS>(acc);  // two's complement bits
    }
};

}  // namespace lbgen

#endif  // LBGEN_ACTIVATION_HPP
