// lbgen HLS library: Huffman-coded weight streams (lbgen.huffman).
//
// A Huffman-coded layer keeps, instead of its weight ROM, one coded stream
// per element of the weight word ("lane" p*SIMD + s, the codes of
// W[nf*PE + p][sf*SIMD + s] in ROM address order nf*SF + sf) and one
// canonical-code decoder per lane, so the MVAU gets its PE*SIMD weights in
// every iteration of its II=1 loop (one symbol per decoder and iteration).
//
//   struct fc0_huff {                       // traits (generated, lbgen_params.h)
//       static const unsigned L, FW, WB, NSYM, LANES, PASS_LEN, DEPTH;
//   };
//   static const lbgen::HuffmanStreams<fc0_huff> fc0_weights = {...};
//   lbgen::mvau<fc0_config>(in, out, fc0_weights, fc0_thresholds);
//
// Code (canonical, codes most significant bit first): an l-bit prefix v is a
// whole code iff v < limit[l] and no shorter prefix was; its symbol is
// order[base[l] + v - first[l]]. Stream word k of a lane holds stream bits
// k*FW .. k*FW+FW-1, bit i at bit FW-1 - i % FW (first bit on top); a pass of PASS_LEN symbols takes
// n_bits[lane] bits, its last word holds last_bits[lane] of them, and the
// words are read cyclically, so pass follows pass without a gap.
//
// Decoder per lane, as the RTL's lb_huff_lane: a window of two stream words,
// `cur` and the word after it `q`; the next code starts p bits in
// (0 <= p <= FW). A code that ends at or beyond the end of `cur` moves `q`
// into `cur` and reads the next word (one ROM read per iteration at most),
// and the last code of a pass moves on to the start of the word after the
// pass's last word, past its padding. So every iteration decodes a symbol,
// whatever the code lengths. The state persists from call to call (static),
// like the RTL's, which runs pass after pass; the first call loads the
// first two words of every lane (lbgen.huffman.simulate_lane is the model).
//
// Errors: L bits that start no code, a pass whose last code does not end at
// bit last_bits[lane] of its last word, or whose symbols do not sum to
// checksum[lane] modulo 2^16. C-simulation
// prints the first one of each layer on stderr and counts them
// (lbgen::huffman_errors(), which tb_csim checks); the hardware keeps a
// sticky flag.
#ifndef LBGEN_HUFFMAN_HPP
#define LBGEN_HUFFMAN_HPP

#include "lbgen_common.hpp"

#ifndef __SYNTHESIS__
#include <cstdint>
#include <cstdio>
#endif

namespace lbgen {

// A stream word as the ROM stores it: FW bits for synthesis; a plain integer
// (same values) in C-simulation, where g++ would spend minutes constructing
// tens of thousands of ap_uint initializers.
template <unsigned FW>
struct huffman_rom_word {
#ifdef __SYNTHESIS__
    typedef ap_uint<FW> type;
#else
    typedef uint32_t type;
#endif
};

// Tables and streams of one Huffman-coded layer (an aggregate: the generated
// parameters initialise it in declaration order).
template <class H>
struct HuffmanStreams {
    const char *name;                          // the layer, for error messages
    unsigned limit[H::L + 1];                  // per length l = 1..L (entry 0 unused)
    unsigned first[H::L + 1];
    unsigned base[H::L + 1];
    unsigned order[H::NSYM];                   // symbols in code order
    unsigned depth[H::LANES];                  // stream words of each lane
    unsigned last_bits[H::LANES];              // bits in a lane's last word
    unsigned n_bits[H::LANES];                 // bits of a lane's pass (for readers)
    unsigned checksum[H::LANES];               // sum of a lane's symbols mod 2^16
    typename huffman_rom_word<H::FW>::type rom[H::LANES][H::DEPTH];  // the streams (rows padded with 0)
};

// How many Huffman stream errors the C-simulation has seen (all layers).
inline unsigned &huffman_errors() {
    static unsigned count = 0;
    return count;
}

template <class H>
struct huffman_decoder {
    typedef ap_uint<2 * H::FW> window_t;

    struct lane_state {
        ap_uint<H::FW> cur;     // the word being decoded
        ap_uint<H::FW> q;       // the word after it
        bool curlast;           // cur / q is the pass's last word
        bool qlast;
        unsigned ra;            // the word after q
        unsigned p;             // the next code starts p bits into the window
        unsigned sum;           // checksum of this pass so far
    };

    // Count an error; C-simulation also names the first one of the layer.
    static void flag(const HuffmanStreams<H> &s, unsigned lane, const char *what) {
#pragma HLS INLINE
#ifndef __SYNTHESIS__
        static bool reported = false;
        huffman_errors()++;
        if (!reported) {
            std::fprintf(stderr, "lbgen: layer %s: Huffman weight stream of lane %u: %s\n", s.name, lane, what);
            reported = true;
        }
#else
        (void)s;
        (void)lane;
        (void)what;
#endif
    }

    // q moves into cur; the next word is read into q.
    static void advance(const HuffmanStreams<H> &s, lane_state &st, unsigned lane) {
#pragma HLS INLINE
        st.cur = st.q;
        st.curlast = st.qlast;
        st.q = ap_uint<H::FW>(s.rom[lane][st.ra]);
        st.qlast = st.ra == s.depth[lane] - 1;
        st.ra = st.qlast ? 0 : st.ra + 1;
    }

    static void start(const HuffmanStreams<H> &s, lane_state &st, unsigned lane) {
        const unsigned d = s.depth[lane];
        st.cur = ap_uint<H::FW>(s.rom[lane][0]);
        st.curlast = d == 1;
        st.q = ap_uint<H::FW>(s.rom[lane][1 % d]);
        st.qlast = 1 % d == d - 1;
        st.ra = 2 % d;
        st.p = 0;
        st.sum = 0;
    }

    // Decode the next symbol of a lane (pass position k).
    static unsigned next(const HuffmanStreams<H> &s, lane_state &st, unsigned lane, unsigned k) {
#pragma HLS INLINE
        window_t win = (window_t(st.cur) << H::FW) | window_t(st.q);
        win <<= st.p;
        const unsigned peek = win.range(2 * H::FW - 1, 2 * H::FW - H::L).to_uint();
        // the limits do not decrease with the length: the smallest l whose l-bit
        // prefix is below limit[l] is the code's length
        unsigned len = 0, sym = s.order[0];
        for (unsigned l = H::L; l >= 1; l--) {
#pragma HLS UNROLL
            if ((peek >> (H::L - l)) < s.limit[l]) len = l;
        }
        if (len != 0) {
            sym = s.order[s.base[len] + (peek >> (H::L - len)) - s.first[len]];
        } else {
            flag(s, lane, "L bits that start no code");
            len = H::L;
        }
        const unsigned np = st.p + len;
        const bool inq = np > H::FW;
        const unsigned sum = (st.sum + sym) & 0xffffu;
        const bool last = k == H::PASS_LEN - 1;
        if (last) {
            if (!(inq ? st.qlast : st.curlast) || (inq ? np - H::FW : np) != s.last_bits[lane]
                || sum != s.checksum[lane])
                flag(s, lane, "a pass that ends off its last bit or has the wrong checksum");
            st.sum = 0;
        } else {
            st.sum = sum;
        }
        const unsigned p_next = last ? (inq ? H::FW : 0) : (np >= H::FW ? np - H::FW : np);
        if (last || np >= H::FW) advance(s, st, lane);
        st.p = p_next;
        return sym;
    }

    // The next weight word (lane i at [i*WB +: WB]).
    template <class WORD>
    static WORD next_word(const HuffmanStreams<H> &s) {
#pragma HLS INLINE
        static lane_state st[H::LANES];
#pragma HLS ARRAY_PARTITION variable=st complete dim=1
        static bool started = false;
        static unsigned k = 0;
        if (!started) {
            for (unsigned i = 0; i < H::LANES; i++) start(s, st[i], i);
            started = true;
        }
        WORD w = 0;
        for (unsigned i = 0; i < H::LANES; i++) {
#pragma HLS UNROLL
            w.range(i * H::WB + H::WB - 1, i * H::WB) = next(s, st[i], i, k);
        }
        k = (k == H::PASS_LEN - 1) ? 0 : k + 1;
        return w;
    }
};

}  // namespace lbgen

#endif  // LBGEN_HUFFMAN_HPP
