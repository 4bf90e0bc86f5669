// lbgen HLS library: the matrix-vector-activation unit (MVAU).
//
// In the style of finn-hlslib's mvau.hpp: ONE flattened loop over NF*SF
// iterations at II=1. During the first neuron fold (nf == 0) every input beat
// is read from the stream and kept in a buffer; the other neuron folds reuse
// it. Each iteration reads weight ROM word nf*SF + sf, adds the SIMD-lane
// product of every PE row to its accumulator and, on the last synapse fold,
// turns the PE accumulators into one output beat through the activation.
//
// The engine is generic over the product (CFG::product_t, lbgen_pe.hpp) and
// the activation (CFG::activation_t, lbgen_activation.hpp). A layer is
// described by a traits struct (hls4ml style), parameters live apart:
//
//   struct fc0_config {
//       static const unsigned MW, MH, PE, SIMD, NF, SF, ACC_BITS, OUT_BITS;
//       typedef lbgen::bipolar in_elem_t;          // number kinds
//       typedef lbgen::int_k<4> weight_elem_t;
//       typedef lbgen::MulAdd<weight_elem_t, in_elem_t> product_t;
//       typedef lbgen::MultiThreshold<PE, T, ACC_BITS, OUT_BITS> activation_t;
//       typedef ap_uint<SIMD * in bits> in_beat_t;
//       typedef ap_uint<PE * SIMD * weight bits> weight_word_t;
//       typedef ap_int<ACC_BITS> acc_t;
//       typedef ap_uint<PE * OUT_BITS> out_beat_t;
//   };
//
//   lbgen::mvau<fc0_config>(in, out, fc0_weights, fc0_thresholds);  // hidden layer
//   lbgen::mvau<fc2_config>(in, out, fc2_weights);                  // output layer
//
// Streams (one frame per call): in carries SF beats of SIMD elements, out
// carries NF beats of PE elements; output beat nf holds channels nf*PE ..
// nf*PE+PE-1. Weight ROM word nf*SF + sf, element p*SIMD + s = code of
// W[nf*PE + p][sf*SIMD + s] (lbgen.packing.weight_words).
//
// C-simulation speed: ap_int operations cost tens of ns each under g++. With
// -DLBGEN_CSIM_NATIVE (and never in synthesis) the MAC stage of the loop runs
// as a native-integer model of the same arithmetic (mac_stage<CFG, true>);
// streams, buffering, fold order and the activation stay the ap_int code.
// lbgen's tests run every design both ways against the golden model.
#ifndef LBGEN_MVAU_HPP
#define LBGEN_MVAU_HPP

#include "lbgen_activation.hpp"
#include "lbgen_common.hpp"
#include "lbgen_pe.hpp"

namespace lbgen {

// Compile-time checks of a layer configuration; instantiated by mvau<CFG>.
template <class CFG>
struct check_config {
    typedef typename CFG::in_elem_t XE;
    typedef typename CFG::weight_elem_t WE;
    typedef typename CFG::activation_t ACT;
    static_assert(CFG::PE >= 1 && CFG::SIMD >= 1, "PE and SIMD must be at least 1");
    static_assert(CFG::MH % CFG::PE == 0, "PE must divide MH");
    static_assert(CFG::MW % CFG::SIMD == 0, "SIMD must divide MW");
    static_assert(CFG::NF * CFG::PE == CFG::MH, "NF must be MH / PE");
    static_assert(CFG::SF * CFG::SIMD == CFG::MW, "SF must be MW / SIMD");
    static_assert(CFG::in_beat_t::width == (int)(CFG::SIMD * XE::BITS), "in_beat_t must be SIMD input elements wide");
    static_assert(CFG::weight_word_t::width == (int)(CFG::PE * CFG::SIMD * WE::BITS),
                  "weight_word_t must be PE*SIMD weights wide");
    static_assert(CFG::acc_t::width == (int)CFG::ACC_BITS, "acc_t must be ACC_BITS wide");
    static_assert(is_same<typename CFG::product_t::weight_elem_t, WE>::value &&
                      is_same<typename CFG::product_t::in_elem_t, XE>::value,
                  "product_t must take weight_elem_t weights and in_elem_t inputs");
    static_assert(ACT::OUT_BITS == CFG::OUT_BITS, "activation_t and OUT_BITS disagree");
    static_assert(CFG::out_beat_t::width == (int)(CFG::PE * ACT::OUT_BITS), "out_beat_t must be PE output elements wide");
    static const bool ok = true;
};

// The MAC stage of one iteration: add the SIMD-lane dot product of every PE
// row of weight word i to that PE's accumulator (or start it, on sf == 0).
// This is the datapath synthesis sees.
template <class CFG, bool NATIVE = false>
struct mac_stage {
    typedef typename CFG::acc_t store_t;  // accumulator storage
    static const unsigned ROW_BITS = CFG::SIMD * CFG::weight_elem_t::BITS;

    static void accumulate(store_t acc[CFG::PE], const typename CFG::weight_word_t weights[], unsigned i,
                           const typename CFG::in_beat_t &x, bool first) {
#pragma HLS INLINE
        typedef typename CFG::acc_t acc_t;
        const typename CFG::weight_word_t w = weights[i];
        for (unsigned p = 0; p < CFG::PE; p++) {
#pragma HLS UNROLL
            const ap_uint<ROW_BITS> row = w.range(p * ROW_BITS + ROW_BITS - 1, p * ROW_BITS);
            const acc_t partial = CFG::product_t::template dot<CFG::SIMD, acc_t>(row, x);
            acc[p] = first ? partial : acc_t(acc[p] + partial);
        }
    }

    static typename CFG::acc_t result(const store_t &a) {
#pragma HLS INLINE
        return a;
    }
};

#ifdef LBGEN_NATIVE_MODEL
// C-simulation model of mac_stage (build with -DLBGEN_CSIM_NATIVE): the same
// integers in native int64 on 64-bit limbs, with the weight ROM's rows split
// into limbs once per ROM. ap_int operations cost tens of ns each in
// C-simulation; this runs at about a nanosecond per lane. Exact: partial sums
// stay inside the accumulator range, and the final conversion to acc_t wraps
// modulo 2^ACC_BITS just as the ap_int additions would.
template <class CFG>
struct mac_stage<CFG, true> {
    typedef int64_t store_t;
    static const unsigned ROW_BITS = CFG::SIMD * CFG::weight_elem_t::BITS;
    static const unsigned ROW_LIMBS = (ROW_BITS + 63) / 64;
    static const unsigned X_LIMBS = (CFG::SIMD * CFG::in_elem_t::BITS + 63) / 64;

    static const uint64_t *rows(const typename CFG::weight_word_t rom[]) {
        static const typename CFG::weight_word_t *key = 0;
        static std::vector<uint64_t> data;
        if (key != rom) {
            data.assign((size_t)CFG::NF * CFG::SF * CFG::PE * ROW_LIMBS, 0);
            for (unsigned i = 0; i < CFG::NF * CFG::SF; i++)
                for (unsigned p = 0; p < CFG::PE; p++) {
                    const ap_uint<ROW_BITS> row = rom[i].range(p * ROW_BITS + ROW_BITS - 1, p * ROW_BITS);
                    to_limbs(row, &data[((size_t)i * CFG::PE + p) * ROW_LIMBS]);
                }
            key = rom;
        }
        return data.data();
    }

    static void accumulate(store_t acc[CFG::PE], const typename CFG::weight_word_t weights[], unsigned i,
                           const typename CFG::in_beat_t &x, bool first) {
        const uint64_t *w = rows(weights) + (size_t)i * CFG::PE * ROW_LIMBS;
        uint64_t xl[X_LIMBS];
        to_limbs(x, xl);
        for (unsigned p = 0; p < CFG::PE; p++) {
            const int64_t partial = CFG::product_t::template dot_native<CFG::SIMD>(w + p * ROW_LIMBS, xl);
            acc[p] = first ? partial : acc[p] + partial;
        }
    }

    static typename CFG::acc_t result(const store_t &a) { return typename CFG::acc_t(a); }
};

template <class CFG>
struct use_native {
    static const bool value = CFG::product_t::NATIVE_OK;
};
#else
template <class CFG>
struct use_native {
    static const bool value = false;
};
#endif

// The engine: one frame per call.
template <class CFG>
void mvau_engine(hls::stream<typename CFG::in_beat_t> &in, hls::stream<typename CFG::out_beat_t> &out,
                 const typename CFG::weight_word_t weights[CFG::NF * CFG::SF],
                 const typename CFG::activation_t::word_t act_rom[CFG::NF]) {
#pragma HLS INLINE off
    static_assert(check_config<CFG>::ok, "layer configuration");
    typedef mac_stage<CFG, use_native<CFG>::value> MAC;
    typedef typename CFG::activation_t ACT;
    typedef typename CFG::in_beat_t in_beat_t;
    typedef typename CFG::out_beat_t out_beat_t;
    const unsigned NF = CFG::NF, SF = CFG::SF, PE = CFG::PE, OB = CFG::OUT_BITS;

    in_beat_t inbuf[SF];  // the input vector, reused for every neuron fold
#pragma HLS BIND_STORAGE variable=inbuf type=ram_2p impl=auto
    typename MAC::store_t acc[PE];
#pragma HLS ARRAY_PARTITION variable=acc complete dim=1

    unsigned nf = 0, sf = 0;
    for (unsigned i = 0; i < NF * SF; i++) {
#pragma HLS PIPELINE II=1
        in_beat_t x;
        if (nf == 0) {
            x = in.read();
            inbuf[sf] = x;
        } else {
            x = inbuf[sf];
        }
        MAC::accumulate(acc, weights, i, x, sf == 0);  // weight word nf*SF + sf == i
        if (sf == SF - 1) {
            const typename ACT::word_t t = ACT::fetch(act_rom, nf);
            out_beat_t y = 0;
            for (unsigned p = 0; p < PE; p++) {
#pragma HLS UNROLL
                y.range(p * OB + OB - 1, p * OB) = ACT::activate(MAC::result(acc[p]), t, p);
            }
            out.write(y);
            sf = 0;
            nf = (nf == NF - 1) ? 0 : nf + 1;
        } else {
            sf++;
        }
    }
}

// Hidden layer: multi-threshold activation from a threshold ROM (NF words).
template <class CFG>
void mvau(hls::stream<typename CFG::in_beat_t> &in, hls::stream<typename CFG::out_beat_t> &out,
          const typename CFG::weight_word_t weights[CFG::NF * CFG::SF],
          const typename CFG::activation_t::word_t thresholds[CFG::NF]) {
#pragma HLS INLINE
    static_assert(CFG::activation_t::N_THRESHOLDS > 0, "a layer with thresholds needs a MultiThreshold activation");
    mvau_engine<CFG>(in, out, weights, thresholds);
}

// An all-zero stand-in for the threshold ROM of an output layer (never read).
template <class CFG>
struct no_rom {
    static const typename CFG::activation_t::word_t data[CFG::NF];
};
template <class CFG>
const typename CFG::activation_t::word_t no_rom<CFG>::data[CFG::NF] = {};

// Output layer: raw accumulators, no threshold ROM.
template <class CFG>
void mvau(hls::stream<typename CFG::in_beat_t> &in, hls::stream<typename CFG::out_beat_t> &out,
          const typename CFG::weight_word_t weights[CFG::NF * CFG::SF]) {
#pragma HLS INLINE
    static_assert(CFG::activation_t::N_THRESHOLDS == 0, "a layer without thresholds needs a RawAccumulator activation");
    mvau_engine<CFG>(in, out, weights, no_rom<CFG>::data);
}

}  // namespace lbgen

#endif  // LBGEN_MVAU_HPP
