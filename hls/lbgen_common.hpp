// lbgen HLS library: number kinds and packed-word helpers.
//
// Conventions (docs/emit-contract.md and docs/reference.md, "Number formats"):
//   * element i of any packed word (stream beat, ROM word) sits at bits [i*W +: W];
//   * bipolar: value -1/+1 carried as bit (v+1)/2; uint k: the level; int k: two's complement;
//   * log2 k (weights): sign bit on top + exponent field f of k-1 bits: f = 0 is 0,
//     else (-1)^sign * 2^(f-1);
//   * hetero (weights): N bipolar planes with constant integer scales K_i (the
//     value is sum over used planes of K_i * (2*s_i - 1)), 2N-1 bits: plane
//     signs s_i at bits [0, N), a thermometer mask at bits [N, 2N-1).
//
// Vitis HLS style; C-simulation compiles with plain g++ -std=c++14 against the
// Apache-2.0 ap_types headers. If a design uses words wider than 1024 bits,
// define AP_INT_MAX_W before the first include of ap_int.h (the generated
// lbgen_top.h does this).
#ifndef LBGEN_COMMON_HPP
#define LBGEN_COMMON_HPP

#include <ap_int.h>
#include <hls_stream.h>
#include <stdint.h>

// LBGEN_CSIM_NATIVE (a fast g++ C-simulation, never synthesis) selects a
// native-integer model of the MVAU's MAC stage (lbgen_mvau.hpp) and, in the
// generated lbgen_params.h, ROMs built from plain 64-bit limb tables
// (lbgen_csim.hpp RomImage). Without it every operation is the synthesized
// code's ap_int arithmetic; the C-simulation paths (#ifndef __SYNTHESIS__)
// give the same bits and values: wide words cut apart through 64-bit limbs,
// ROM words cut into rows or threshold elements once per ROM, and a lane
// product taken in its operands' own ap_int widths (lbgen_pe.hpp).
#if defined(LBGEN_CSIM_NATIVE) && !defined(__SYNTHESIS__)
#define LBGEN_NATIVE_MODEL 1
#endif
#ifndef __SYNTHESIS__
#include <vector>
#endif

namespace lbgen {

// Smallest number of bits that holds the unsigned value n (n >= 0; 0 -> 1).
constexpr unsigned bits_for(unsigned long long n) {
    unsigned b = 1;
    while (b < 64 && (n >> b) != 0) ++b;
    return b;
}

// ---------------------------------------------------------------------------
// Number kinds: the code -> value map of one stream element or weight.
// Each kind has BITS (width of its code), value_t and value(code).
// ---------------------------------------------------------------------------

struct bipolar {
    static const unsigned BITS = 1;
    static const bool SIGNED = true;
    typedef ap_int<2> value_t;
    static value_t value(const ap_uint<1> &code) {
#pragma HLS INLINE
        return code ? value_t(1) : value_t(-1);
    }
};

template <unsigned B>
struct uint_k {
    static_assert(B >= 1 && B <= 64, "uint_k: 1..64 bits");
    static const unsigned BITS = B;
    static const bool SIGNED = false;
    typedef ap_uint<B> value_t;
    static value_t value(const ap_uint<B> &code) {
#pragma HLS INLINE
        return code;
    }
};

template <unsigned B>
struct int_k {
    static_assert(B >= 2 && B <= 64, "int_k: 2..64 bits");
    static const unsigned BITS = B;
    static const bool SIGNED = true;
    typedef ap_int<B> value_t;
    static value_t value(const ap_uint<B> &code) {
#pragma HLS INLINE
        return value_t(code);  // same bits, read as two's complement
    }
};

// Power-of-two weight of B bits (lbgen.ir KINDS "log2"): code = sign bit
// (bit B-1) + exponent field f (bits [0, B-1)); f = 0 is the value 0, else
// (-1)^sign * 2^(f-1). Exponents run 0 .. MAX_EXP = 2^(B-1) - 2. A zero code
// has its sign bit clear.
template <unsigned B>
struct log2_k {
    static_assert(B >= 2 && B <= 6, "log2_k: 2..6 bits (sign + exponent field; 6 bits reach 2^30)");
    static const unsigned BITS = B;
    static const bool SIGNED = true;
    static const unsigned FIELD_BITS = B - 1;
    static const unsigned MAX_EXP = (1u << (B - 1)) - 2;
    typedef ap_int<MAX_EXP + 2> value_t;  // -2^MAX_EXP .. 2^MAX_EXP

    static bool negative(const ap_uint<B> &code) {
#pragma HLS INLINE
        return code[B - 1];
    }
    static ap_uint<B - 1> field(const ap_uint<B> &code) {
#pragma HLS INLINE
        return code.range(B - 2, 0);
    }
    static value_t value(const ap_uint<B> &code) {
#pragma HLS INLINE
        const unsigned f = field(code);
        const value_t mag = (f == 0) ? value_t(0) : value_t(value_t(1) << (f - 1));
        return negative(code) ? value_t(-mag) : mag;
    }
};

// Ternary weight (lbgen.ir KINDS "ternary"; Li & Liu): -1, 0 or +1 in B = 2
// bits, the code its two's complement (00 = 0, 01 = +1, 11 = -1): bit 0 says
// nonzero, bit 1 negative. 10 is no code; it reads as 0, as in the RTL core.
template <unsigned B>
struct ternary_k {
    static_assert(B == 2, "ternary_k: 2 bits");
    static const unsigned BITS = B;
    static const bool SIGNED = true;
    typedef ap_int<2> value_t;

    static bool nonzero(const ap_uint<B> &code) {
#pragma HLS INLINE
        return code[0];
    }
    static bool negative(const ap_uint<B> &code) {
#pragma HLS INLINE
        return code[1];
    }
    static value_t value(const ap_uint<B> &code) {
#pragma HLS INLINE
        return !nonzero(code) ? value_t(0) : negative(code) ? value_t(-1) : value_t(1);
    }
};

// Heterogeneous-bitwidth binarized weight (lbgen.ir KINDS "hetero"; Fromm et
// al. 2018): N = 1..4 bipolar planes with constant integer scales K0..K{N-1}
// (template parameters, the same for every weight of a layer; unused trailing
// ones are 0). value = sum over used planes i of K_i * (2*s_i - 1).
// Code of 2N-1 bits: bit i (i < N) is plane i's sign s_i; bit N+i-1 (1 <= i < N)
// says plane i is used. Plane 0 is always used, the mask is a thermometer and
// the sign bit of an unused plane is 0 (lbgen.ir checks the codes).
template <unsigned N, unsigned K0, unsigned K1 = 0, unsigned K2 = 0, unsigned K3 = 0>
struct hetero {
    static_assert(N >= 1 && N <= 4, "hetero: 1..4 planes");
    static_assert(K0 >= 1 && (N < 2 || K1 >= 1) && (N < 3 || K2 >= 1) && (N < 4 || K3 >= 1),
                  "hetero: the scale of every plane is at least 1");
    static_assert((N >= 2 || K1 == 0) && (N >= 3 || K2 == 0) && (N >= 4 || K3 == 0),
                  "hetero: give exactly N plane scales");
    static const unsigned BITS = 2 * N - 1;
    static const bool SIGNED = true;
    static const unsigned PLANES = N;
    // sum of the scales: the largest |value|
    static const unsigned long long SCALE_SUM =
        (unsigned long long)K0 + (unsigned long long)K1 + (unsigned long long)K2 + (unsigned long long)K3;
    typedef ap_int<bits_for(SCALE_SUM) + 1> value_t;

    static constexpr unsigned scale(unsigned i) { return i == 0 ? K0 : i == 1 ? K1 : i == 2 ? K2 : K3; }
    static bool sign(const ap_uint<BITS> &code, unsigned i) {
#pragma HLS INLINE
        return code[i];
    }
    static bool used(const ap_uint<BITS> &code, unsigned i) {
#pragma HLS INLINE
        return i == 0 ? true : (bool)code[N + i - 1];
    }
    static value_t value(const ap_uint<BITS> &code) {
#pragma HLS INLINE
        value_t v = 0;
        for (unsigned i = 0; i < N; i++) {
#pragma HLS UNROLL
            if (used(code, i)) v = sign(code, i) ? value_t(v + value_t(scale(i))) : value_t(v - value_t(scale(i)));
        }
        return v;
    }
};

template <class A, class B>
struct is_same {
    static const bool value = false;
};
template <class A>
struct is_same<A, A> {
    static const bool value = true;
};

template <class K>
struct is_bipolar {
    static const bool value = false;
};
template <>
struct is_bipolar<bipolar> {
    static const bool value = true;
};

template <class K>
struct is_log2 {
    static const bool value = false;
};
template <unsigned B>
struct is_log2<log2_k<B> > {
    static const bool value = true;
};

template <class K>
struct is_ternary {
    static const bool value = false;
};
template <unsigned B>
struct is_ternary<ternary_k<B> > {
    static const bool value = true;
};

template <class K>
struct is_hetero {
    static const bool value = false;
};
template <unsigned N, unsigned K0, unsigned K1, unsigned K2, unsigned K3>
struct is_hetero<hetero<N, K0, K1, K2, K3> > {
    static const bool value = true;
};

// Little-endian 64-bit limbs of a word: limb k = bits [64k +: 64] (C-simulation only).
// The word is halved (at a multiple of 64 bits) until the parts fit one limb:
// a multi-word range() or shift builds and shifts a copy of the whole word, so
// cutting L limbs off one at a time costs L whole-word copies, halving about log2(L).
#ifndef __SYNTHESIS__
template <int N, bool WIDE = (N > 64)>
struct limb_split {
    static void apply(const ap_uint<N> &word, uint64_t *limbs) { limbs[0] = word.to_uint64(); }
};
template <int N>
struct limb_split<N, true> {
    static const int LO = 64 * (((N + 63) / 64 + 1) / 2);  // the low half, whole limbs
    static void apply(const ap_uint<N> &word, uint64_t *limbs) {
        limb_split<LO>::apply(ap_uint<LO>(word), limbs);
        limb_split<N - LO>::apply(ap_uint<N - LO>(word >> LO), limbs + LO / 64);
    }
};
template <int N>
inline void to_limbs(const ap_uint<N> &word, uint64_t *limbs) {
    limb_split<N>::apply(word, limbs);
}

// bits [lo +: n] of a little-endian limb array, 1 <= n <= 64 (C-simulation only)
inline uint64_t limb_field(const uint64_t *limbs, unsigned lo, unsigned n) {
    const unsigned k = lo / 64, s = lo % 64;
    uint64_t v = limbs[k] >> s;
    if (s + n > 64) v |= limbs[k + 1] << (64 - s);
    return n < 64 ? v & ((uint64_t(1) << n) - 1) : v;
}

// bits [lo +: N] of a limb array as an ap_uint<N> (C-simulation only)
template <int N>
inline ap_uint<N> from_limb_field(const uint64_t *limbs, unsigned lo) {
    if (N <= 64) return ap_uint<N>(limb_field(limbs, lo, N));
    const int TOP = (N - 1) / 64;
    ap_uint<N> word = ap_uint<N>(limb_field(limbs, lo + 64 * TOP, (unsigned)N - 64 * TOP));
    for (int k = TOP - 1; k >= 0; k--) {
        word <<= 64;
        word |= ap_uint<N>(limb_field(limbs, lo + 64 * k, 64));
    }
    return word;
}
#endif

// Unpack COUNT elements of EB bits (element i at bits [i*EB +: EB]) into an
// array. The word is cut into chunks of at most 64 bits first: pure wiring in
// hardware. C-simulation cuts the word through its 64-bit limbs (the same
// bits), which keeps multi-word ap_uint shifts and range() calls out of the
// per-element work.
template <unsigned EB, unsigned COUNT, int N>
inline void unpack(const ap_uint<N> &word, ap_uint<EB> out[COUNT]) {
#pragma HLS INLINE
    static_assert(EB >= 1 && EB <= 64, "unpack: elements of 1..64 bits");
    static_assert(EB * COUNT <= (unsigned)N, "unpack: more elements than the word holds");
#ifdef __SYNTHESIS__
    const unsigned PER = 64 / EB;  // elements per chunk
    for (unsigned first = 0; first < COUNT; first += PER) {
#pragma HLS UNROLL
        const unsigned n = COUNT - first < PER ? COUNT - first : PER;
        const ap_uint<64> chunk = word.range(first * EB + n * EB - 1, first * EB);
        for (unsigned k = 0; k < n; k++) {
#pragma HLS UNROLL
            out[first + k] = chunk.range(k * EB + EB - 1, k * EB);
        }
    }
#else
    uint64_t limbs[(N + 63) / 64];
    to_limbs(word, limbs);
    for (unsigned i = 0; i < COUNT; i++) out[i] = ap_uint<EB>(limb_field(limbs, i * EB, EB));
#endif
}

// Number of set bits of a word.
template <int N>
inline ap_uint<bits_for(N)> popcount(const ap_uint<N> &word) {
#pragma HLS INLINE
#ifdef __SYNTHESIS__
    ap_uint<bits_for(N)> count = 0;
    for (unsigned i = 0; i < (unsigned)N; i++) {
#pragma HLS UNROLL
        count += word[i];
    }
    return count;
#else
    // C-simulation model: the same count, 64 bits at a time
    uint64_t limbs[(N + 63) / 64];
    to_limbs(word, limbs);
    unsigned count = 0;
    for (unsigned k = 0; k < ((unsigned)N + 63) / 64; k++) count += (unsigned)__builtin_popcountll(limbs[k]);
    return count;
#endif
}

}  // namespace lbgen

#endif  // LBGEN_COMMON_HPP
