// lbgen::topk<C>(in, out[, scores]) -- the top-K unit after the last layer
// (FINN's LabelSelect), the C++ twin of templates/rtl/lb_topk.v.
//
// Reads one frame of the last layer's stream (C::NF beats of C::PE elements,
// class nf*PE + p in element p of beat nf) and writes ONE beat of C::K class
// indices: element i (C::IDX_BITS wide, at [i*IDX_BITS +: IDX_BITS]) is the
// index of the i-th largest score, largest first; ties go to the lowest index
// (a later class displaces a kept one only with a strictly larger score).
//
// Score of class c (lbgen.ir.topk_terms; Python computed every width):
//   C::USE_SCALE: x_c * S_c + B_c, exact in score_t (C::SCORE_BITS signed), with
//                 scores[c] = {B_c, S_c} (S_c in the low C::SCALE_BITS bits, both
//                 two's complement): the order of the logits;
//   else:         x_c itself, signed accumulators (C::IN_SIGNED) or unsigned levels.
//
// The traits struct C (lbgen_params.h): PE, NF, CLASSES, K, IDX_BITS, IN_BITS,
// IN_SIGNED, USE_SCALE, SCALE_BITS, BIAS_BITS, SCORE_BITS, in_beat_t, out_beat_t,
// score_word_t, score_t. II=1 on input beats: the PE insertions of a beat are
// unrolled into one chain of compare-and-shift steps over the K slots.
#ifndef LBGEN_TOPK_HPP
#define LBGEN_TOPK_HPP

#include "lbgen_common.hpp"

namespace lbgen {

template <class C>
typename C::score_t topk_score(const ap_uint<C::IN_BITS> &x, const typename C::score_word_t &word) {
#pragma HLS INLINE
    typename C::score_t v;
    if (C::IN_SIGNED) {
        v = ap_int<C::IN_BITS>(x);                 // two's complement accumulator, sign-extended
    } else {
        v = x;                                     // unsigned level, zero-extended
    }
    if (!C::USE_SCALE) return v;
    const ap_int<C::SCALE_BITS> s = word.range(C::SCALE_BITS - 1, 0);
    const ap_int<C::BIAS_BITS> b = word.range(C::SCALE_BITS + C::BIAS_BITS - 1, C::SCALE_BITS);
    return typename C::score_t(v * s + b);         // exact: SCORE_BITS holds every score
}

template <class C>
void topk_engine(hls::stream<typename C::in_beat_t> &in, hls::stream<typename C::out_beat_t> &out,
                 const typename C::score_word_t scores[]) {
#pragma HLS INLINE off
    static_assert(C::K >= 1 && C::K <= C::CLASSES, "topk: 1 <= K <= classes");
    static_assert(C::CLASSES == C::PE * C::NF, "topk: classes = PE * NF");
    static_assert(((C::CLASSES - 1) >> C::IDX_BITS) == 0, "topk: IDX_BITS must hold classes - 1");
    static_assert(C::USE_SCALE || C::SCORE_BITS >= C::IN_BITS + 1, "topk: SCORE_BITS >= IN_BITS + 1");
    typename C::score_t best[C::K];
    ap_uint<C::IDX_BITS> index[C::K];
    bool used[C::K];
#pragma HLS ARRAY_PARTITION variable=best complete
#pragma HLS ARRAY_PARTITION variable=index complete
#pragma HLS ARRAY_PARTITION variable=used complete
    for (unsigned i = 0; i < C::K; i++) {
#pragma HLS UNROLL
        used[i] = false;
        best[i] = 0;
        index[i] = 0;
    }
    for (unsigned nf = 0; nf < C::NF; nf++) {
#pragma HLS PIPELINE II=1
        const typename C::in_beat_t beat = in.read();
        for (unsigned p = 0; p < C::PE; p++) {
#pragma HLS UNROLL
            const unsigned c = nf * C::PE + p;
            const typename C::score_t v = topk_score<C>(
                ap_uint<C::IN_BITS>(beat.range((p + 1) * C::IN_BITS - 1, p * C::IN_BITS)),
                C::USE_SCALE ? scores[c] : typename C::score_word_t(0));
            // insertion: slot i takes the newcomer or slot i-1 where the newcomer beats slot i
            bool above = false;                    // the newcomer beat slot i-1
            typename C::score_t carry_s = v;
            ap_uint<C::IDX_BITS> carry_i = c;
            bool carry_u = true;
            for (unsigned i = 0; i < C::K; i++) {
#pragma HLS UNROLL
                const bool better = !used[i] || v > best[i];
                if (better) {
                    const typename C::score_t s_old = best[i];
                    const ap_uint<C::IDX_BITS> i_old = index[i];
                    const bool u_old = used[i];
                    best[i] = above ? carry_s : v;
                    index[i] = above ? carry_i : ap_uint<C::IDX_BITS>(c);
                    used[i] = above ? carry_u : true;
                    carry_s = s_old;
                    carry_i = i_old;
                    carry_u = u_old;
                }
                above = better;
            }
        }
    }
    typename C::out_beat_t o = 0;
    for (unsigned i = 0; i < C::K; i++) {
#pragma HLS UNROLL
        o.range((i + 1) * C::IDX_BITS - 1, i * C::IDX_BITS) = index[i];
    }
    out.write(o);
}

// With the per-class score ROM (C::USE_SCALE).
template <class C>
void topk(hls::stream<typename C::in_beat_t> &in, hls::stream<typename C::out_beat_t> &out,
          const typename C::score_word_t scores[C::CLASSES]) {
#pragma HLS INLINE
    static_assert(C::USE_SCALE, "topk: a unit without scores is called without a ROM");
    topk_engine<C>(in, out, scores);
}

// Comparing the elements directly (no ROM).
template <class C>
void topk(hls::stream<typename C::in_beat_t> &in, hls::stream<typename C::out_beat_t> &out) {
#pragma HLS INLINE
    static_assert(!C::USE_SCALE, "topk: a unit with per-class scores needs its ROM");
    static const typename C::score_word_t none[1] = {0};
    topk_engine<C>(in, out, none);
}

}  // namespace lbgen

#endif  // LBGEN_TOPK_HPP
