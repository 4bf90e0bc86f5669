// lbgen HLS library: processing elements (the "product" of an MVAU).
//
// A product functor computes the contribution of one SIMD fold to one output
// channel: dot(w, x) = sum_s value(w_s) * value(x_s), where w is the PE row of
// a weight ROM word (SIMD codes of WE::BITS) and x is an input beat (SIMD codes
// of XE::BITS). The MVAU (lbgen_mvau.hpp) is generic over it:
//
//   XnorPopcount<bipolar, bipolar>  sum = 2*popcount(~(w ^ x)) - SIMD
//   AddSub<bipolar, XE>             sum = sum_s (w_s ? +x_s : -x_s)
//   MulAdd<WE, XE>                  sum = sum_s w_s * x_s (k-bit integer weights)
//   ShiftAdd<log2_k<B>, XE>         sum = sum_s +-(x_s << e_s) (power-of-two weights)
//   MaskedPlanes<hetero<...>, XE>   sum = sum_i K_i * P_i, P_i a masked XNOR-popcount
//                                   (bipolar x) or masked add/subtract of plane i
//   MaskedAddSub<ternary_k<2>, XE>  sum = sum_s nz_s ? (neg_s ? -x_s : +x_s) : 0, one
//                                   such plane with scale 1
//
// ACC is the accumulator type of the layer (ap_int<ACC_BITS>). lbgen sizes
// ACC_BITS from the exact range of the whole dot product (MatVec.acc_range in
// lbgen/ir.py), possibly to the bit. Why summing in ACC is exact: for its
// fixed weight w a term w * x ranges over w * [xmin, xmax], and every input
// format has xmin <= 0 <= xmax (bipolar: -1..+1), so each term's range [lo, hi]
// has lo <= 0 <= hi. A sum of any subset of the terms, in particular the
// running sum over the lanes of a fold and over the folds, thus lies in
// [sum of all lo, sum of all hi], the range of the whole dot product, and
// therefore in ACC. Quantities that are NOT sums of true terms (a hetero plane
// sum times its scale: the planes of one weight can cancel, so K_0 * P_0 can
// exceed the whole row's range) are computed in a type sized for their own
// worst case and only the fold's total, a true partial dot product, is
// narrowed to ACC.
//
// With LBGEN_CSIM_NATIVE (C-simulation only) each functor also has
// dot_native<SIMD>(w_limbs, x_limbs) -> int64_t, the same sum in native
// integers on 64-bit limbs, and NATIVE_OK (operands narrow enough for int64).
#ifndef LBGEN_PE_HPP
#define LBGEN_PE_HPP

#include "lbgen_common.hpp"

namespace lbgen {

namespace detail {

// value(w) * value(x) for one lane, exact.
template <class WE, class XE>
struct lane_product {
    typedef ap_int<WE::BITS + XE::BITS + 1> type;
    static type apply(const ap_uint<WE::BITS> &w, const ap_uint<XE::BITS> &x) {
#pragma HLS INLINE
#ifdef __SYNTHESIS__
        return type(WE::value(w)) * type(XE::value(x));
#else
        // C-simulation: the same product from the operands' own widths. The reference
        // ap_types multiply two ap_int<type> in a 2 * 2 * width (> 64 bit) temporary on
        // the heap; value_t * value_t is exact in its own width (ap_int<WB + XB>, signed
        // or unsigned alike) and stays in one 64-bit word for narrow operands.
        return type(WE::value(w) * XE::value(x));
#endif
    }
};

// bipolar input: a conditional negate of the weight, no multiplier
template <class WE>
struct lane_product<WE, bipolar> {
    typedef ap_int<WE::BITS + 2> type;
    static type apply(const ap_uint<WE::BITS> &w, const ap_uint<1> &x) {
#pragma HLS INLINE
        type v = WE::value(w);
        return x ? type(v) : type(-v);
    }
};

// bipolar weight: add or subtract the input
template <class XE>
struct lane_product<bipolar, XE> {
    typedef ap_int<XE::BITS + 2> type;
    static type apply(const ap_uint<1> &w, const ap_uint<XE::BITS> &x) {
#pragma HLS INLINE
        type v = XE::value(x);
        return w ? type(v) : type(-v);
    }
};

template <>
struct lane_product<bipolar, bipolar> {
    typedef ap_int<2> type;
    static type apply(const ap_uint<1> &w, const ap_uint<1> &x) {
#pragma HLS INLINE
        return (w == x) ? type(1) : type(-1);
    }
};

// One lane of ShiftAdd: value(w) * value(x) for a log2 weight, as the input
// shifted left by the exponent and conditionally negated (a barrel shifter and
// a negate; zero code: 0). No multiplier.
template <class WE, class XE>
struct shift_lane {
    static const unsigned E = WE::MAX_EXP;
    // |x| <= 2^XB (int x: 2^(XB-1), uint: 2^XB - 1) so |x * 2^E| <= 2^(XB+E): XB+E+2 bits signed
    typedef ap_int<XE::BITS + E + 2> type;
    static type apply(const ap_uint<WE::BITS> &w, const ap_uint<XE::BITS> &x) {
#pragma HLS INLINE
        const unsigned f = WE::field(w);
        const type shifted = type(XE::value(x)) << (f == 0 ? 0u : f - 1);
        const type t = (f == 0) ? type(0) : shifted;
        return WE::negative(w) ? type(-t) : t;
    }
};

// bipolar input: +-2^e, the sign is sign(w) xor sign(x)
template <class WE>
struct shift_lane<WE, bipolar> {
    typedef ap_int<WE::MAX_EXP + 2> type;
    static type apply(const ap_uint<WE::BITS> &w, const ap_uint<1> &x) {
#pragma HLS INLINE
        const unsigned f = WE::field(w);
        const type pow = type(1) << (f == 0 ? 0u : f - 1);
        const type t = (f == 0) ? type(0) : pow;
        return (WE::negative(w) != (x == 0)) ? type(-t) : t;
    }
};

// c * v for a compile-time constant c >= 0 as shifts and adds, one adder per
// set bit of c (no multiplier). Exact when R holds c * v: every shifted term
// v * 2^b (2^b <= c) and every running sum has the sign of c * v and at most
// its magnitude.
template <unsigned long long C, class R, class V>
R mul_const(const V &v) {
#pragma HLS INLINE
    R r = 0;
    for (unsigned b = 0; b < 64; b++) {
#pragma HLS UNROLL
        if ((C >> b) & 1) r += R(R(v) << b);
    }
    return r;
}

// Plane sum of bipolar inputs: sum over the lanes the plane uses of
// (s == x ? +1 : -1) = 2 * popcount(mask & ~(sign ^ x)) - popcount(mask),
// in [-SIMD, SIMD].
template <unsigned SIMD>
ap_int<bits_for(SIMD) + 2> masked_xnor(const ap_uint<SIMD> &sign, const ap_uint<SIMD> &mask,
                                       const ap_uint<SIMD> &x) {
#pragma HLS INLINE
    typedef ap_int<bits_for(SIMD) + 2> T;
    const ap_uint<SIMD> agree = mask & ap_uint<SIMD>(~(sign ^ x));
    return T(T(popcount(agree)) << 1) - T(popcount(mask));
}

// Plane sum of k-bit inputs: sum over the lanes the plane uses of (s ? +x : -x),
// |sum| <= SIMD * 2^XB.
template <unsigned SIMD, class XE>
ap_int<bits_for(SIMD) + XE::BITS + 1> masked_addsub(const ap_uint<SIMD> &sign, const ap_uint<SIMD> &mask,
                                                   const ap_uint<XE::BITS> x[SIMD]) {
#pragma HLS INLINE
    typedef ap_int<bits_for(SIMD) + XE::BITS + 1> T;
    T sum = 0;
    for (unsigned s = 0; s < SIMD; s++) {
#pragma HLS UNROLL
        const T v = XE::value(x[s]);
        if (mask[s]) sum = sign[s] ? T(sum + v) : T(sum - v);
    }
    return sum;
}

// Plane sum of one fold: bipolar inputs use the packed beat x, others its lanes xl.
template <unsigned SIMD, class XE, bool BIPOLAR = is_bipolar<XE>::value>
struct plane_sum {
    static const unsigned BITS = bits_for(SIMD) + XE::BITS + 1;
    static ap_int<BITS> apply(const ap_uint<SIMD> &sign, const ap_uint<SIMD> &mask, const ap_uint<SIMD * XE::BITS> &,
                              const ap_uint<XE::BITS> xl[SIMD]) {
#pragma HLS INLINE
        return masked_addsub<SIMD, XE>(sign, mask, xl);
    }
};
template <unsigned SIMD, class XE>
struct plane_sum<SIMD, XE, true> {
    static const unsigned BITS = bits_for(SIMD) + 2;
    static ap_int<BITS> apply(const ap_uint<SIMD> &sign, const ap_uint<SIMD> &mask, const ap_uint<SIMD> &x,
                              const ap_uint<1>[SIMD]) {
#pragma HLS INLINE
        return masked_xnor<SIMD>(sign, mask, x);
    }
};

// sum over planes I..N-1 of K_i * P_i, in R (R holds SIMD * xmax * sum K)
template <class WE, class XE, unsigned SIMD, class R, unsigned I = 0, bool MORE = (I < WE::PLANES)>
struct scaled_planes {
    static R apply(const ap_uint<SIMD> sign[], const ap_uint<SIMD> mask[], const ap_uint<SIMD * XE::BITS> &x,
                   const ap_uint<XE::BITS> xl[SIMD]) {
#pragma HLS INLINE
        const R mine = mul_const<WE::scale(I), R>(plane_sum<SIMD, XE>::apply(sign[I], mask[I], x, xl));
        return R(mine + scaled_planes<WE, XE, SIMD, R, I + 1>::apply(sign, mask, x, xl));
    }
};
template <class WE, class XE, unsigned SIMD, class R, unsigned I>
struct scaled_planes<WE, XE, SIMD, R, I, false> {
    static R apply(const ap_uint<SIMD>[], const ap_uint<SIMD>[], const ap_uint<SIMD * XE::BITS> &,
                   const ap_uint<XE::BITS>[SIMD]) {
        return R(0);
    }
};

// Sum of lane products over SIMD lanes, in ACC. LANE::apply(w, x) is the
// product of one lane: a multiplier (lane_product) or a shift (shift_lane).
template <unsigned SIMD, class ACC, class WE, class XE, class LANE>
ACC lane_sum(const ap_uint<SIMD * WE::BITS> &w, const ap_uint<SIMD * XE::BITS> &x) {
#pragma HLS INLINE
    ap_uint<WE::BITS> wl[SIMD];
#pragma HLS ARRAY_PARTITION variable=wl complete dim=1
    ap_uint<XE::BITS> xl[SIMD];
#pragma HLS ARRAY_PARTITION variable=xl complete dim=1
    unpack<WE::BITS, SIMD>(w, wl);
    unpack<XE::BITS, SIMD>(x, xl);
    ACC sum = 0;
    for (unsigned s = 0; s < SIMD; s++) {
#pragma HLS UNROLL
        sum += LANE::apply(wl[s], xl[s]);
    }
    return sum;
}

}  // namespace detail

#ifdef LBGEN_NATIVE_MODEL
// C-simulation model (LBGEN_CSIM_NATIVE, see lbgen_mvau.hpp): the same dot
// products in native integers on 64-bit limbs (limb k = bits [64k +: 64]).
namespace native {

// bits [lo +: width] of a little-endian limb array (width <= 64)
inline uint64_t field(const uint64_t *limbs, unsigned lo, unsigned width) {
    const unsigned k = lo / 64, off = lo % 64;
    uint64_t v = limbs[k] >> off;
    if (off + width > 64) v |= limbs[k + 1] << (64 - off);
    return width >= 64 ? v : (v & ((((uint64_t)1) << width) - 1));
}

template <class K>
struct value;
template <>
struct value<bipolar> {
    static int64_t get(uint64_t code) { return code ? 1 : -1; }
};
template <unsigned B>
struct value<uint_k<B> > {
    static int64_t get(uint64_t code) { return (int64_t)code; }
};
template <unsigned B>
struct value<int_k<B> > {
    static int64_t get(uint64_t code) { return (int64_t)(code << (64 - B)) >> (64 - B); }
};

template <unsigned B>
struct value<log2_k<B> > {
    static int64_t get(uint64_t code) {
        const uint64_t f = code & ((1u << (B - 1)) - 1);
        const int64_t mag = f ? ((int64_t)1 << (f - 1)) : 0;
        return (code >> (B - 1)) & 1 ? -mag : mag;
    }
};
template <unsigned B>
struct value<ternary_k<B> > {
    static int64_t get(uint64_t code) { return (code & 1) ? ((code & 2) ? -1 : 1) : 0; }
};
template <unsigned N, unsigned K0, unsigned K1, unsigned K2, unsigned K3>
struct value<hetero<N, K0, K1, K2, K3> > {
    static int64_t get(uint64_t code) {
        typedef hetero<N, K0, K1, K2, K3> H;
        int64_t v = 0;
        for (unsigned i = 0; i < N; i++)
            if (i == 0 || ((code >> (N + i - 1)) & 1)) v += ((code >> i) & 1) ? (int64_t)H::scale(i) : -(int64_t)H::scale(i);
        return v;
    }
};

template <unsigned SIMD, class WE, class XE>
int64_t lane_sum(const uint64_t *w, const uint64_t *x) {
    int64_t sum = 0;
    for (unsigned s = 0; s < SIMD; s++)
        sum += value<WE>::get(field(w, s * WE::BITS, WE::BITS)) * value<XE>::get(field(x, s * XE::BITS, XE::BITS));
    return sum;
}

}  // namespace native
#endif

// Binary weights x binary activations: XNOR and popcount.
template <class WE, class XE>
struct XnorPopcount {
    static_assert(is_bipolar<WE>::value && is_bipolar<XE>::value,
                  "XnorPopcount needs bipolar weights and bipolar inputs");
    typedef WE weight_elem_t;
    typedef XE in_elem_t;

    template <unsigned SIMD, class ACC>
    static ACC dot(const ap_uint<SIMD> &w, const ap_uint<SIMD> &x) {
#pragma HLS INLINE
        const ap_uint<SIMD> agree = ~(w ^ x);
        const ap_uint<bits_for(SIMD)> pop = popcount(agree);
        // 2*pop - SIMD lies in [-SIMD, SIMD]
        ap_int<bits_for(2 * SIMD) + 1> sum = ap_int<bits_for(2 * SIMD) + 1>(pop) * 2 - SIMD;
        return ACC(sum);
    }

#ifdef LBGEN_NATIVE_MODEL
    static const bool NATIVE_OK = true;
    template <unsigned SIMD>
    static int64_t dot_native(const uint64_t *w, const uint64_t *x) {
        int64_t pop = 0;
        for (unsigned k = 0; k * 64 < SIMD; k++) {
            uint64_t agree = ~(w[k] ^ x[k]);
            if (SIMD - k * 64 < 64) agree &= (((uint64_t)1) << (SIMD - k * 64)) - 1;
            pop += __builtin_popcountll(agree);
        }
        return 2 * pop - (int64_t)SIMD;
    }
#endif
};

// Binary weights x k-bit activations: add or subtract each activation.
template <class WE, class XE>
struct AddSub {
    static_assert(is_bipolar<WE>::value, "AddSub needs bipolar weights");
    static_assert(!is_bipolar<XE>::value, "AddSub with bipolar inputs: use XnorPopcount");
    typedef WE weight_elem_t;
    typedef XE in_elem_t;

    template <unsigned SIMD, class ACC>
    static ACC dot(const ap_uint<SIMD> &w, const ap_uint<SIMD * XE::BITS> &x) {
#pragma HLS INLINE
        return detail::lane_sum<SIMD, ACC, WE, XE, detail::lane_product<WE, XE> >(w, x);
    }

#ifdef LBGEN_NATIVE_MODEL
    static const bool NATIVE_OK = XE::BITS <= 62;
    template <unsigned SIMD>
    static int64_t dot_native(const uint64_t *w, const uint64_t *x) {
        return native::lane_sum<SIMD, WE, XE>(w, x);
    }
#endif
};

// k-bit integer weights x any activation: multiply-add.
template <class WE, class XE>
struct MulAdd {
    static_assert(!is_bipolar<WE>::value, "MulAdd with bipolar weights: use AddSub or XnorPopcount");
    typedef WE weight_elem_t;
    typedef XE in_elem_t;

    template <unsigned SIMD, class ACC>
    static ACC dot(const ap_uint<SIMD * WE::BITS> &w, const ap_uint<SIMD * XE::BITS> &x) {
#pragma HLS INLINE
        return detail::lane_sum<SIMD, ACC, WE, XE, detail::lane_product<WE, XE> >(w, x);
    }

#ifdef LBGEN_NATIVE_MODEL
    // |w*x| < 2^62 keeps every product inside int64
    static const bool NATIVE_OK = WE::BITS + XE::BITS <= 62;
    template <unsigned SIMD>
    static int64_t dot_native(const uint64_t *w, const uint64_t *x) {
        return native::lane_sum<SIMD, WE, XE>(w, x);
    }
#endif
};

// Power-of-two (log2) weights x any activation: per lane the input shifted
// left by the weight's exponent and conditionally negated (detail::shift_lane),
// summed over the lanes. Each lane value is a true term w_s * x_s, so the
// running sum stays in the accumulator range (see the top of this file).
template <class WE, class XE>
struct ShiftAdd {
    static_assert(is_log2<WE>::value, "ShiftAdd needs log2 weights (lbgen::log2_k<B>)");
    typedef WE weight_elem_t;
    typedef XE in_elem_t;

    template <unsigned SIMD, class ACC>
    static ACC dot(const ap_uint<SIMD * WE::BITS> &w, const ap_uint<SIMD * XE::BITS> &x) {
#pragma HLS INLINE
        return detail::lane_sum<SIMD, ACC, WE, XE, detail::shift_lane<WE, XE> >(w, x);
    }

#ifdef LBGEN_NATIVE_MODEL
    // |x * 2^e| < 2^(XB + MAX_EXP) must fit int64
    static const bool NATIVE_OK = XE::BITS + WE::MAX_EXP <= 62;
    template <unsigned SIMD>
    static int64_t dot_native(const uint64_t *w, const uint64_t *x) {
        const unsigned WB = WE::BITS, XB = XE::BITS;
        int64_t sum = 0;
        for (unsigned s = 0; s < SIMD; s++) {
            const uint64_t code = native::field(w, s * WB, WB);
            const uint64_t f = code & ((1u << (WB - 1)) - 1);
            if (f == 0) continue;
            const int64_t v = native::value<XE>::get(native::field(x, s * XB, XB));
            const int64_t t = (int64_t)((uint64_t)v << (f - 1));
            sum += (code >> (WB - 1)) ? -t : t;
        }
        return sum;
    }
#endif
};

// Heterogeneous-bitwidth binarized weights x bipolar or k-bit activations.
// The fold's codes are split into N sign vectors and N mask vectors of SIMD
// bits (wiring); plane i contributes K_i * P_i, where P_i is a masked
// XNOR-popcount (bipolar inputs, detail::masked_xnor) or a masked add/subtract
// of the inputs (detail::masked_addsub), and the constant scales K_i are shifts
// and adds (detail::mul_const).
//
// Exactness: P_i and K_i * P_i are not terms of the dot product (the planes of
// one weight may cancel: K = (8,4,2), value 8-4-2 = 2), so they and their sum
// are computed in wide_t, sized for the worst case |sum| <= SIMD * xmax * sum K_i.
// The fold total is a true partial dot product (sum of SIMD terms), hence in
// the accumulator range, and converts to ACC exactly.
template <class WE, class XE>
struct MaskedPlanes {
    static_assert(is_hetero<WE>::value, "MaskedPlanes needs hetero weights (lbgen::hetero<N, K...>)");
    typedef WE weight_elem_t;
    typedef XE in_elem_t;
    static const unsigned N = WE::PLANES;

    template <unsigned SIMD, class ACC>
    static ACC dot(const ap_uint<SIMD * WE::BITS> &w, const ap_uint<SIMD * XE::BITS> &x) {
#pragma HLS INLINE
        // |P_i| < 2^(PS::BITS - 1) and sum K < 2^bits_for(sum K): every partial sum of the
        // K_i * P_i is below 2^(PS::BITS - 1 + bits_for(sum K)) in magnitude
        typedef detail::plane_sum<SIMD, XE> PS;
        typedef ap_int<PS::BITS + bits_for(WE::SCALE_SUM)> wide_t;
        ap_uint<WE::BITS> wl[SIMD];
#pragma HLS ARRAY_PARTITION variable=wl complete dim=1
        unpack<WE::BITS, SIMD>(w, wl);
        ap_uint<SIMD> sign[N], mask[N];
#pragma HLS ARRAY_PARTITION variable=sign complete dim=1
#pragma HLS ARRAY_PARTITION variable=mask complete dim=1
        for (unsigned i = 0; i < N; i++) {
#pragma HLS UNROLL
            for (unsigned s = 0; s < SIMD; s++) {
#pragma HLS UNROLL
                sign[i][s] = WE::sign(wl[s], i);
                mask[i][s] = WE::used(wl[s], i);
            }
        }
        ap_uint<XE::BITS> xl[SIMD];
#pragma HLS ARRAY_PARTITION variable=xl complete dim=1
        if (!is_bipolar<XE>::value) unpack<XE::BITS, SIMD>(x, xl);  // bipolar: the popcounts take x itself
        return ACC(detail::scaled_planes<WE, XE, SIMD, wide_t>::apply(sign, mask, x, xl));
    }

#ifdef LBGEN_NATIVE_MODEL
    // |value(w) * x| <= sum K * 2^XB must fit int64
    static const bool NATIVE_OK = bits_for(WE::SCALE_SUM) + XE::BITS <= 62;
    template <unsigned SIMD>
    static int64_t dot_native(const uint64_t *w, const uint64_t *x) {
        const unsigned WB = WE::BITS, XB = XE::BITS;
        const int64_t *v = table().v;
        int64_t sum = 0;
        for (unsigned s = 0; s < SIMD; s++) {
            const int64_t wv = v[native::field(w, s * WB, WB)];
            if (is_bipolar<XE>::value)
                sum += native::field(x, s, 1) ? wv : -wv;
            else
                sum += wv * native::value<XE>::get(native::field(x, s * XB, XB));
        }
        return sum;
    }
    // code -> value, all 2^(2N-1) codes
    struct values {
        int64_t v[1u << WE::BITS];
        values() {
            for (unsigned c = 0; c < (1u << WE::BITS); c++) v[c] = native::value<WE>::get(c);
        }
    };
    static const values &table() {
        static const values t;
        return t;
    }
#endif
};

// Ternary weights x bipolar or k-bit activations (Li & Liu): a masked
// add/subtract, or for bipolar inputs a masked XNOR-popcount -- one plane of
// MaskedPlanes with scale 1 (mask = the nonzero bits, sign = not negative),
// so it reuses detail::plane_sum. The plane sum is a true partial dot
// product (the sum of the SIMD terms w_s * x_s), hence in ACC's range.
template <class WE, class XE>
struct MaskedAddSub {
    static_assert(is_ternary<WE>::value, "MaskedAddSub needs ternary weights (lbgen::ternary_k<2>)");
    typedef WE weight_elem_t;
    typedef XE in_elem_t;

    template <unsigned SIMD, class ACC>
    static ACC dot(const ap_uint<SIMD * WE::BITS> &w, const ap_uint<SIMD * XE::BITS> &x) {
#pragma HLS INLINE
        ap_uint<SIMD> sign, mask;
        for (unsigned s = 0; s < SIMD; s++) {
#pragma HLS UNROLL
            mask[s] = w[s * WE::BITS];
            sign[s] = !w[s * WE::BITS + 1];
        }
        ap_uint<XE::BITS> xl[SIMD];
#pragma HLS ARRAY_PARTITION variable=xl complete dim=1
        if (!is_bipolar<XE>::value) unpack<XE::BITS, SIMD>(x, xl);  // bipolar: the popcount takes x itself
        return ACC(detail::plane_sum<SIMD, XE>::apply(sign, mask, x, xl));
    }

#ifdef LBGEN_NATIVE_MODEL
    static const bool NATIVE_OK = XE::BITS <= 62;
    template <unsigned SIMD>
    static int64_t dot_native(const uint64_t *w, const uint64_t *x) {
        return native::lane_sum<SIMD, WE, XE>(w, x);
    }
#endif
};

}  // namespace lbgen

#endif  // LBGEN_PE_HPP
