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
//
// ACC is the accumulator type of the layer (ap_int<ACC_BITS>). Every partial
// sum lies inside the layer's accumulator range (each term's range contains 0),
// so summing in ACC is exact.
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
        return type(WE::value(w)) * type(XE::value(x));
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

// Sum of lane products over SIMD lanes, in ACC.
template <unsigned SIMD, class ACC, class WE, class XE>
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
        sum += lane_product<WE, XE>::apply(wl[s], xl[s]);
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
        return detail::lane_sum<SIMD, ACC, WE, XE>(w, x);
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
        return detail::lane_sum<SIMD, ACC, WE, XE>(w, x);
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

}  // namespace lbgen

#endif  // LBGEN_PE_HPP
