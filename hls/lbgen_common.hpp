// lbgen HLS library: number kinds and packed-word helpers.
//
// Conventions (docs/emit-contract.md, DESIGN.md "Numbers"):
//   * element i of any packed word (stream beat, ROM word) sits at bits [i*W +: W];
//   * bipolar: value -1/+1 carried as bit (v+1)/2; uint k: the level; int k: two's complement.
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
// (lbgen_csim.hpp RomImage). Without it every line is the synthesized code.
#if defined(LBGEN_CSIM_NATIVE) && !defined(__SYNTHESIS__)
#define LBGEN_NATIVE_MODEL 1
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

// Unpack COUNT elements of EB bits (element i at bits [i*EB +: EB]) into an
// array. The word is cut into chunks of at most 64 bits first: pure wiring in
// hardware, and in C-simulation it keeps multi-word ap_uint shifts out of the
// per-element work.
template <unsigned EB, unsigned COUNT, int N>
inline void unpack(const ap_uint<N> &word, ap_uint<EB> out[COUNT]) {
#pragma HLS INLINE
    static_assert(EB >= 1 && EB <= 64, "unpack: elements of 1..64 bits");
    static_assert(EB * COUNT <= (unsigned)N, "unpack: more elements than the word holds");
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
}

// Little-endian 64-bit limbs of a word: limb k = bits [64k +: 64] (C-simulation only).
#ifndef __SYNTHESIS__
template <int N>
inline void to_limbs(const ap_uint<N> &word, uint64_t *limbs) {
    if (N <= 64) {
        limbs[0] = word.to_uint64();
        return;
    }
    for (unsigned lo = 0; lo < (unsigned)N; lo += 64) {
        const unsigned hi = lo + 63 < (unsigned)N - 1 ? lo + 63 : (unsigned)N - 1;
        limbs[lo / 64] = word.range(hi, lo).to_uint64();
    }
}
#endif

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
    unsigned count = 0;
    for (unsigned lo = 0; lo < (unsigned)N; lo += 64) {
        const unsigned hi = lo + 63 < (unsigned)N - 1 ? lo + 63 : (unsigned)N - 1;
        count += (unsigned)__builtin_popcountll(word.range(hi, lo).to_uint64());
    }
    return count;
#endif
}

}  // namespace lbgen

#endif  // LBGEN_COMMON_HPP
