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
// Decoder per lane: a bit buffer of 3*FW + L bits (next bit on top); an
// iteration reads one word when the buffer has room for it, then decodes one
// symbol. The state persists from call to call (static), like the RTL's,
// which runs pass after pass; only the very first call fills the buffers
// first (see lbgen.huffman for the refill argument).
//
// Errors: a prefix that is no code, a buffer that runs dry (cannot happen
// with an intact stream), a pass that does not end exactly at its last bit
// or whose symbols do not sum to checksum[lane] modulo 2^16. C-simulation
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
    unsigned n_bits[H::LANES];                 // bits of a lane's pass
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
    static const unsigned BW = 3 * H::FW + H::L;   // bit buffer
    typedef ap_uint<BW> buffer_t;

    struct lane_state {
        buffer_t bits;
        unsigned cnt;       // valid bits in the buffer
        unsigned ra;        // next word
        unsigned pos;       // bits consumed in this pass
        unsigned sum;       // checksum of this pass
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

    static void refill(const HuffmanStreams<H> &s, lane_state &st, unsigned lane) {
#pragma HLS INLINE
        const bool last = st.ra == s.depth[lane] - 1;
        const unsigned nb = last ? s.last_bits[lane] : H::FW;
        const ap_uint<H::FW> word = ap_uint<H::FW>(s.rom[lane][st.ra]);
        const ap_uint<H::FW> mask = ~(ap_uint<H::FW>(~ap_uint<H::FW>(0)) >> nb);   // the top nb bits
        buffer_t wide = buffer_t(word & mask);
        st.bits |= (wide << (BW - H::FW)) >> st.cnt;
        st.cnt += nb;
        st.ra = last ? 0 : st.ra + 1;
    }

    // Decode the next symbol of a lane (pass position k); refill first if there is room.
    static unsigned next(const HuffmanStreams<H> &s, lane_state &st, unsigned lane, unsigned k) {
#pragma HLS INLINE
        if (st.cnt + H::FW <= BW) refill(s, st, lane);
        unsigned v = 0, len = 0, sym = s.order[0];
        for (unsigned l = 1; l <= H::L; l++) {
#pragma HLS UNROLL
            v = (v << 1) | (unsigned)st.bits[BW - l];
            if (len == 0 && v < s.limit[l]) {
                len = l;
                sym = s.order[s.base[l] + v - s.first[l]];
            }
        }
        if (len == 0) {
            flag(s, lane, "a prefix that is no code");
            len = H::L;
        } else if (len > st.cnt) {
            flag(s, lane, "the buffer ran dry");
        }
        st.bits <<= len;
        st.cnt = len > st.cnt ? 0 : st.cnt - len;
        if (k == H::PASS_LEN - 1) {
            if (st.pos + len != s.n_bits[lane] || ((st.sum + sym) & 0xffffu) != s.checksum[lane])
                flag(s, lane, "a pass that ends off its last bit or has the wrong checksum");
            st.pos = 0;
            st.sum = 0;
        } else {
            st.pos += len;
            st.sum = (st.sum + sym) & 0xffffu;
        }
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
            // the first call only: fill every buffer far enough that one
            // refill per iteration keeps it ahead from then on
            for (unsigned i = 0; i < H::LANES; i++) {
                st[i].bits = 0;
                st[i].cnt = st[i].ra = st[i].pos = st[i].sum = 0;
                while (st[i].cnt < H::FW + H::L && st[i].cnt + H::FW <= BW) refill(s, st[i], i);
            }
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
