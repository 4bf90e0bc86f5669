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
// The weights are a ROM (an array of NF*SF words) or, for a Huffman-coded
// layer, its lbgen::HuffmanStreams (lbgen_huffman.hpp), which decode the same
// words in the same order.
//
// Streams (one frame per call): in carries SF beats of SIMD elements, out
// carries NF beats of PE elements; output beat nf holds channels nf*PE ..
// nf*PE+PE-1. Weight ROM word nf*SF + sf, element p*SIMD + s = code of
// W[nf*PE + p][sf*SIMD + s] (lbgen.packing.weight_words). Threshold ROMs
// thresholds[PE][NF]: word [p][nf] is the threshold set of channel nf*PE + p
// (lbgen_activation.hpp); partition it completely in dimension 1.
//
// C-simulation speed: ap_int operations cost tens of ns each under g++. With
// -DLBGEN_CSIM_NATIVE (and never in synthesis) the MAC stage of the loop and
// the multi-threshold compare run as native-integer models of the same
// arithmetic (mac_stage<CFG, true>, act_stage<CFG, true>); streams, buffering
// and fold order stay the ap_int code. lbgen's tests run every design both
// ways against the golden model. Without it every operation is ap_int code;
// its C-simulation paths (#ifndef __SYNTHESIS__) give the same bits: the
// weight ROM's PE rows and the threshold ROM's elements are cut out once per
// ROM instead of on every iteration (a multi-word range() in the reference
// ap_types copies and shifts the whole word), wide words are cut apart
// through 64-bit limbs (lbgen_common.hpp to_limbs, unpack), and a lane
// product is taken in its operands' own widths (lbgen_pe.hpp).
#ifndef LBGEN_MVAU_HPP
#define LBGEN_MVAU_HPP

#include "lbgen_activation.hpp"
#include "lbgen_common.hpp"
#include "lbgen_huffman.hpp"
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
#ifdef __SYNTHESIS__
        accumulate_word(acc, weights[i], x, first);
#else
        // C-simulation: the PE rows of every ROM word cut out once per ROM (the same bits as
        // accumulate_word's range(); keyed by the ROM's address, as the native model's rows:
        // the weight ROMs are constant arrays at namespace scope, lbgen_params.h); the dot
        // products and the accumulation are accumulate_word's
        typedef typename CFG::acc_t acc_t;
        const ap_uint<ROW_BITS> *rows = rom_rows(weights) + (size_t)i * CFG::PE;
        for (unsigned p = 0; p < CFG::PE; p++) {
            const acc_t partial = CFG::product_t::template dot<CFG::SIMD, acc_t>(rows[p], x);
            acc[p] = first ? partial : acc_t(acc[p] + partial);
        }
#endif
    }

#ifndef __SYNTHESIS__
    static const ap_uint<ROW_BITS> *rom_rows(const typename CFG::weight_word_t rom[]) {
        static const typename CFG::weight_word_t *key = 0;
        static std::vector<ap_uint<ROW_BITS> > rows;
        if (key != rom) {
            rows.assign((size_t)CFG::NF * CFG::SF * CFG::PE, ap_uint<ROW_BITS>(0));
            uint64_t wl[(CFG::weight_word_t::width + 63) / 64];
            for (unsigned i = 0; i < CFG::NF * CFG::SF; i++) {
                to_limbs(rom[i], wl);
                for (unsigned p = 0; p < CFG::PE; p++)
                    rows[(size_t)i * CFG::PE + p] = from_limb_field<ROW_BITS>(wl, p * ROW_BITS);
            }
            key = rom;
        }
        return rows.data();
    }
#endif

    static void accumulate_word(store_t acc[CFG::PE], const typename CFG::weight_word_t &w,
                                const typename CFG::in_beat_t &x, bool first) {
#pragma HLS INLINE
        typedef typename CFG::acc_t acc_t;
#ifndef __SYNTHESIS__
        // C-simulation: the word cut into its 64-bit limbs once, the rows taken from those
        // (the same bits as the range() below, without a copy of the whole word per row)
        uint64_t wl[(CFG::weight_word_t::width + 63) / 64];
        to_limbs(w, wl);
#endif
        for (unsigned p = 0; p < CFG::PE; p++) {
#pragma HLS UNROLL
#ifdef __SYNTHESIS__
            const ap_uint<ROW_BITS> row = w.range(p * ROW_BITS + ROW_BITS - 1, p * ROW_BITS);
#else
            const ap_uint<ROW_BITS> row = from_limb_field<ROW_BITS>(wl, p * ROW_BITS);
#endif
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

    // a weight word that is not in a ROM (decoded from a Huffman stream): split it here
    static void accumulate_word(store_t acc[CFG::PE], const typename CFG::weight_word_t &w,
                                const typename CFG::in_beat_t &x, bool first) {
        uint64_t row[ROW_LIMBS], xl[X_LIMBS];
        to_limbs(x, xl);
        for (unsigned p = 0; p < CFG::PE; p++) {
            to_limbs(ap_uint<ROW_BITS>(w.range(p * ROW_BITS + ROW_BITS - 1, p * ROW_BITS)), row);
            const int64_t partial = CFG::product_t::template dot_native<CFG::SIMD>(row, xl);
            acc[p] = first ? partial : acc[p] + partial;
        }
    }

    static typename CFG::acc_t result(const store_t &a) { return typename CFG::acc_t(a); }
};

template <class CFG>
struct use_native {
    static const bool value = CFG::product_t::NATIVE_OK;
    static const bool activation = CFG::activation_t::N_THRESHOLDS > 0;
};
#else
template <class CFG>
struct use_native {
    static const bool value = false;
    static const bool activation = false;
};
#endif

// The activation of channel nf*PE + p on the last synapse fold: its threshold
// word is word nf of PE lane p's ROM (act_rom is partitioned in dimension 1,
// so every lane reads its own ROM in the same cycle). This is what synthesis sees.
template <class CFG, bool NATIVE = false>
struct act_stage {
    typedef typename CFG::activation_t ACT;
    static ap_uint<CFG::OUT_BITS> apply(const typename CFG::acc_t &acc,
                                       const typename ACT::word_t act_rom[CFG::PE][CFG::NF], unsigned nf,
                                       unsigned p) {
#pragma HLS INLINE
#ifdef __SYNTHESIS__
        return ACT::activate(acc, act_rom[p][nf]);
#else
        // C-simulation: the same compare on thresholds unpacked once per ROM
        return csim_rom<ACT, (ACT::N_THRESHOLDS > 0)>::apply(acc, act_rom, nf, p);
#endif
    }

#ifndef __SYNTHESIS__
    // C-simulation: every threshold word of the layer's ROM unpacked once (the same bits
    // as activate's unpack, which cuts a word of T * ACC_BITS + 1 bits apart on every
    // call), then activate's compare (MultiThreshold::levels). One table per layer
    // configuration, keyed by the ROM's address as the native model's tables: the
    // threshold ROMs are constant arrays at namespace scope (lbgen_params.h).
    template <class A, bool ROM>
    struct csim_rom {
        static const unsigned T = A::N_THRESHOLDS, PE = CFG::PE, NF = CFG::NF, AB = CFG::ACC_BITS;
        static ap_uint<CFG::OUT_BITS> apply(const typename CFG::acc_t &acc,
                                           const typename A::word_t rom[CFG::PE][CFG::NF], unsigned nf,
                                           unsigned p) {
            static const void *key = 0;
            static std::vector<ap_uint<AB> > t;
            static std::vector<unsigned char> invert;
            if (key != (const void *)rom) {
                t.assign((size_t)PE * NF * T, ap_uint<AB>(0));
                invert.assign((size_t)PE * NF, 0);
                for (unsigned q = 0; q < PE; q++)
                    for (unsigned f = 0; f < NF; f++) {
                        unpack<AB, T>(rom[q][f], &t[((size_t)q * NF + f) * T]);
                        invert[(size_t)q * NF + f] = rom[q][f][T * AB];
                    }
                key = (const void *)rom;
            }
            return A::levels(acc, &t[((size_t)p * NF + nf) * T], invert[(size_t)p * NF + nf] != 0);
        }
    };
    template <class A>
    struct csim_rom<A, false> {  // RawAccumulator: no ROM
        static ap_uint<CFG::OUT_BITS> apply(const typename CFG::acc_t &acc,
                                           const typename A::word_t act_rom[CFG::PE][CFG::NF], unsigned nf,
                                           unsigned p) {
            return A::activate(acc, act_rom[p][nf]);
        }
    };
#endif
};

#ifdef LBGEN_NATIVE_MODEL
// C-simulation model of the multi-threshold compare (LBGEN_CSIM_NATIVE): the
// threshold words are decoded once per ROM into int64 thresholds, then
// level = count_j(acc >= t_j), or T - count with the invert flag, as in
// MultiThreshold::activate. Cutting a wide ap_uint apart costs microseconds in
// C-simulation; a 255-threshold channel is then a few hundred native compares.
template <class CFG>
struct act_stage<CFG, true> {
    typedef typename CFG::activation_t ACT;
    static const unsigned T = ACT::N_THRESHOLDS;
    static const unsigned A = CFG::ACC_BITS;
    static const unsigned LIMBS = (ACT::WORD_BITS + 63) / 64;

    // bits [lo, lo + n) of a limb array, n <= 64
    static uint64_t field(const uint64_t *limbs, unsigned lo, unsigned n) {
        const unsigned k = lo / 64, s = lo % 64;
        uint64_t v = limbs[k] >> s;
        if (s + n > 64) v |= limbs[k + 1] << (64 - s);
        return n < 64 ? v & ((uint64_t(1) << n) - 1) : v;
    }

    // per channel [p][nf]: T thresholds, then the invert flag (0 or 1)
    static const int64_t *table(const typename ACT::word_t act_rom[CFG::PE][CFG::NF]) {
        static const void *key = 0;
        static std::vector<int64_t> data;
        if (key != (const void *)act_rom) {
            data.assign((size_t)CFG::PE * CFG::NF * (T + 1), 0);
            uint64_t limbs[LIMBS];
            for (unsigned p = 0; p < CFG::PE; p++)
                for (unsigned nf = 0; nf < CFG::NF; nf++) {
                    to_limbs(act_rom[p][nf], limbs);
                    int64_t *d = &data[((size_t)p * CFG::NF + nf) * (T + 1)];
                    for (unsigned j = 0; j < T; j++) {
                        uint64_t v = field(limbs, j * A, A);
                        if (A < 64 && ((v >> (A - 1)) & 1)) v |= ~((uint64_t(1) << (A % 64)) - 1);  // sign
                        d[j] = (int64_t)v;
                    }
                    d[T] = (int64_t)field(limbs, T * A, 1);
                }
            key = (const void *)act_rom;
        }
        return data.data();
    }

    static ap_uint<CFG::OUT_BITS> apply(const typename CFG::acc_t &acc,
                                       const typename ACT::word_t act_rom[CFG::PE][CFG::NF], unsigned nf,
                                       unsigned p) {
        const int64_t *d = table(act_rom) + ((size_t)p * CFG::NF + nf) * (T + 1);
        const int64_t a = acc.to_int64();
        unsigned count = 0;
        for (unsigned j = 0; j < T; j++) count += a >= d[j];
        return d[T] ? T - count : count;
    }
};
#endif

// Where the engine's weight words come from: a ROM (an array, or in native
// C-simulation anything that converts to a pointer to its words), word i in
// iteration i; or Huffman-coded streams (lbgen_huffman.hpp), decoded one word
// per iteration in the same order.
template <class CFG, class W>
struct weight_source {
    const typename CFG::weight_word_t *rom;
    explicit weight_source(const W &weights) : rom(weights) {}
    template <class MAC>
    void accumulate(typename MAC::store_t acc[CFG::PE], unsigned i, const typename CFG::in_beat_t &x, bool first) {
#pragma HLS INLINE
        MAC::accumulate(acc, rom, i, x, first);
    }
};

template <class CFG, class H>
struct weight_source<CFG, HuffmanStreams<H> > {
    static_assert(H::LANES == CFG::PE * CFG::SIMD && H::WB == CFG::weight_elem_t::BITS &&
                      H::PASS_LEN == CFG::NF * CFG::SF,
                  "Huffman streams: LANES = PE*SIMD, WB = weight bits, PASS_LEN = NF*SF");
    const HuffmanStreams<H> &streams;
    explicit weight_source(const HuffmanStreams<H> &s) : streams(s) {}
    template <class MAC>
    void accumulate(typename MAC::store_t acc[CFG::PE], unsigned, const typename CFG::in_beat_t &x, bool first) {
#pragma HLS INLINE
        const typename CFG::weight_word_t w =
            huffman_decoder<H>::template next_word<typename CFG::weight_word_t>(streams);
        MAC::accumulate_word(acc, w, x, first);
    }
};

// The engine: one frame per call. A frame is CFG::PIXELS matrix-vector
// products (a convolution's output pixels, each input vector a window from
// sliding_window; 1 for a fully connected layer). A bipolar-input convolution
// with padding adds corr[class of the pixel][p][nf] to the accumulator before
// the activation (lbgen.ir.padding_corrections: its windows carry code 0,
// the value -1, where torch pads the value 0); the sum wraps modulo
// 2^ACC_BITS like the accumulator itself, and only the final value must fit.
template <class CFG, class W>
void mvau_engine(hls::stream<typename CFG::in_beat_t> &in, hls::stream<typename CFG::out_beat_t> &out,
                 const W &weights,
                 const typename CFG::activation_t::word_t act_rom[CFG::PE][CFG::NF],
                 const typename CFG::acc_t corr[CFG::N_CLASS][CFG::PE][CFG::NF],
                 const ap_uint<8> pix_class[CFG::PIXELS]) {
#pragma HLS INLINE off
    static_assert(check_config<CFG>::ok, "layer configuration");
    static_assert(CFG::PIXELS >= 1 && CFG::N_CLASS >= 1 && CFG::N_CLASS <= 256, "PIXELS and N_CLASS");
    typedef mac_stage<CFG, use_native<CFG>::value> MAC;
    typedef act_stage<CFG, use_native<CFG>::activation> ACTIVATE;
    typedef typename CFG::in_beat_t in_beat_t;
    typedef typename CFG::out_beat_t out_beat_t;
    const unsigned NF = CFG::NF, SF = CFG::SF, PE = CFG::PE, OB = CFG::OUT_BITS;
    weight_source<CFG, W> wsrc(weights);

    in_beat_t inbuf[SF];  // the input vector, reused for every neuron fold
#pragma HLS BIND_STORAGE variable=inbuf type=ram_2p impl=auto
    typename MAC::store_t acc[PE];
#pragma HLS ARRAY_PARTITION variable=acc complete dim=1

    unsigned nf = 0, sf = 0, wi = 0, px = 0;
    for (unsigned i = 0; i < CFG::PIXELS * NF * SF; i++) {
#pragma HLS PIPELINE II=1
        in_beat_t x;
        if (nf == 0) {
            x = in.read();
            inbuf[sf] = x;
        } else {
            x = inbuf[sf];
        }
        wsrc.template accumulate<MAC>(acc, wi, x, sf == 0);  // weight word nf*SF + sf == wi
        if (sf == SF - 1) {
            const unsigned cls = CFG::N_CLASS > 1 ? (unsigned)pix_class[px] : 0u;
            out_beat_t y = 0;
            for (unsigned p = 0; p < PE; p++) {
#pragma HLS UNROLL
                typename CFG::acc_t a = MAC::result(acc[p]);
                if (CFG::N_CLASS > 1) a = typename CFG::acc_t(a + corr[cls][p][nf]);
                y.range(p * OB + OB - 1, p * OB) = ACTIVATE::apply(a, act_rom, nf, p);
            }
            out.write(y);
            sf = 0;
            if (nf == NF - 1) {
                nf = 0;
                px++;
            } else {
                nf++;
            }
        } else {
            sf++;
        }
        wi = (wi == NF * SF - 1) ? 0 : wi + 1;
    }
}

// All-zero stand-ins for the border corrections of a layer without them (never read).
template <class CFG>
struct no_corr {
    static const typename CFG::acc_t data[CFG::N_CLASS][CFG::PE][CFG::NF];
    static const ap_uint<8> classes[CFG::PIXELS];
};
template <class CFG>
const typename CFG::acc_t no_corr<CFG>::data[CFG::N_CLASS][CFG::PE][CFG::NF] = {};
template <class CFG>
const ap_uint<8> no_corr<CFG>::classes[CFG::PIXELS] = {};

// Hidden layer: multi-threshold activation from PE threshold ROMs of NF words.
template <class CFG, class W>
void mvau(hls::stream<typename CFG::in_beat_t> &in, hls::stream<typename CFG::out_beat_t> &out,
          const W &weights, const typename CFG::activation_t::word_t thresholds[CFG::PE][CFG::NF]) {
#pragma HLS INLINE
    static_assert(CFG::activation_t::N_THRESHOLDS > 0, "a layer with thresholds needs a MultiThreshold activation");
    static_assert(CFG::N_CLASS == 1, "a layer with border corrections passes them (the overload below)");
    mvau_engine<CFG>(in, out, weights, thresholds, no_corr<CFG>::data, no_corr<CFG>::classes);
}

// Hidden convolution with bipolar inputs and padding: the border corrections
// of every pixel class and the class of every output pixel.
template <class CFG, class W>
void mvau(hls::stream<typename CFG::in_beat_t> &in, hls::stream<typename CFG::out_beat_t> &out,
          const W &weights, const typename CFG::activation_t::word_t thresholds[CFG::PE][CFG::NF],
          const typename CFG::acc_t corr[CFG::N_CLASS][CFG::PE][CFG::NF],
          const ap_uint<8> pix_class[CFG::PIXELS]) {
#pragma HLS INLINE
    static_assert(CFG::activation_t::N_THRESHOLDS > 0, "a layer with thresholds needs a MultiThreshold activation");
    mvau_engine<CFG>(in, out, weights, thresholds, corr, pix_class);
}

// An all-zero stand-in for the threshold ROM of an output layer (never read).
template <class CFG>
struct no_rom {
    static const typename CFG::activation_t::word_t data[CFG::PE][CFG::NF];
};
template <class CFG>
const typename CFG::activation_t::word_t no_rom<CFG>::data[CFG::PE][CFG::NF] = {};

// Output layer: raw accumulators, no threshold ROM.
template <class CFG, class W>
void mvau(hls::stream<typename CFG::in_beat_t> &in, hls::stream<typename CFG::out_beat_t> &out,
          const W &weights) {
#pragma HLS INLINE
    static_assert(CFG::activation_t::N_THRESHOLDS == 0, "a layer without thresholds needs a RawAccumulator activation");
    static_assert(CFG::N_CLASS == 1, "an output layer has no border corrections");
    mvau_engine<CFG>(in, out, weights, no_rom<CFG>::data, no_corr<CFG>::data, no_corr<CFG>::classes);
}

}  // namespace lbgen

#endif  // LBGEN_MVAU_HPP
