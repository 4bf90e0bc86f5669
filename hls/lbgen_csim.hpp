// lbgen HLS library: C-simulation helpers (never synthesized).
//
//   lbgen::csim::from_hex<W>(text, len, ok)  hex digits (no 0x) -> ap_uint<W>
//   lbgen::csim::to_hex(word)                ap_uint<W> -> ceil(W/4) hex digits
//   lbgen::csim::trace_tap(stream, beats, name)
//       (LBGEN_TRACE builds) append the `beats` beats now waiting in `stream`
//       to <trace_dir>/<name>.hex, one hex beat per line, and put them back.
//       In C-simulation a DATAFLOW region runs its processes one after the
//       other, so after a layer's call its output stream holds the whole frame.
//       Nothing is written while trace_dir() is empty.
//   lbgen::csim::RomImage<WORD, DEPTH, LIMBS>(limbs)
//       a ROM of DEPTH ap_uint words built at start-up from a plain table of
//       64-bit limbs (least significant first); converts to const WORD *. The
//       generated lbgen_params.h uses it under LBGEN_CSIM_NATIVE: g++ needs
//       minutes for tens of thousands of ap_uint initializers, no time for a
//       plain integer table.
//   lbgen::csim::RomImage2<WORD, ROWS, COLS, LIMBS>(limbs)
//       the same for a 2-D ROM array WORD[ROWS][COLS] (the threshold ROMs,
//       [PE][NF]); converts to const WORD (*)[COLS].
#ifndef LBGEN_CSIM_HPP
#define LBGEN_CSIM_HPP

#ifndef __SYNTHESIS__

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>

#include "lbgen_common.hpp"

namespace lbgen {
namespace csim {

inline int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// Parse `len` hex digits (most significant first). ok = false on a bad digit
// or on a value that does not fit W bits.
template <int W>
ap_uint<W> from_hex(const char *text, size_t len, bool &ok) {
    ok = len > 0;
    ap_uint<W> word = 0;
    // 16 digits (one 64-bit limb) at a time, starting at the least significant end
    for (size_t limb = 0; limb * 16 < len; limb++) {
        const size_t end = len - limb * 16;
        const size_t begin = end >= 16 ? end - 16 : 0;
        uint64_t v = 0;
        for (size_t k = begin; k < end; k++) {
            const int d = hex_digit(text[k]);
            if (d < 0) {
                ok = false;
                return 0;
            }
            v = (v << 4) | (uint64_t)d;
        }
        const unsigned lo = (unsigned)(limb * 64);
        if (lo >= (unsigned)W) {
            if (v != 0) ok = false;
            continue;
        }
        const unsigned hi = lo + 63 < (unsigned)W - 1 ? lo + 63 : (unsigned)W - 1;
        if (hi - lo < 63 && (v >> (hi - lo + 1)) != 0) ok = false;
        word.range(hi, lo) = v;
    }
    return word;
}

template <int W>
std::string to_hex(const ap_uint<W> &word) {
    static const char digits[] = "0123456789abcdef";
    const unsigned n = (W + 3) / 4;
    std::string s(n, '0');
    for (unsigned lo = 0; lo < (unsigned)W; lo += 64) {
        const unsigned hi = lo + 63 < (unsigned)W - 1 ? lo + 63 : (unsigned)W - 1;
        uint64_t v = word.range(hi, lo).to_uint64();
        for (unsigned d = lo / 4; d < n && d < lo / 4 + 16; d++) {
            s[n - 1 - d] = digits[v & 15];
            v >>= 4;
        }
    }
    return s;
}

template <class WORD, unsigned DEPTH, unsigned LIMBS>
struct RomImage {
    WORD words[DEPTH];
    explicit RomImage(const unsigned long long (&limbs)[DEPTH][LIMBS]) {
        static_assert(LIMBS == (WORD::width + 63) / 64, "RomImage: LIMBS must be ceil(width / 64)");
        for (unsigned i = 0; i < DEPTH; i++) words[i] = make(limbs[i]);
    }
    // one word from its LIMBS 64-bit limbs, least significant first
    static WORD make(const unsigned long long (&limbs)[LIMBS]) {
        const unsigned W = WORD::width;
        WORD w = 0;
        for (unsigned k = 0; k < LIMBS; k++) {
            const unsigned hi = 64 * k + 63 < W - 1 ? 64 * k + 63 : W - 1;
            w.range(hi, 64 * k) = limbs[k];
        }
        return w;
    }
    operator const WORD *() const { return words; }
};

template <class WORD, unsigned ROWS, unsigned COLS, unsigned LIMBS>
struct RomImage2 {
    typedef const WORD (*pointer)[COLS];
    WORD words[ROWS][COLS];
    explicit RomImage2(const unsigned long long (&limbs)[ROWS][COLS][LIMBS]) {
        static_assert(LIMBS == (WORD::width + 63) / 64, "RomImage2: LIMBS must be ceil(width / 64)");
        for (unsigned r = 0; r < ROWS; r++)
            for (unsigned c = 0; c < COLS; c++) words[r][c] = RomImage<WORD, 1, LIMBS>::make(limbs[r][c]);
    }
    operator pointer() const { return words; }
};

inline std::string &trace_dir() {
    static std::string dir;
    return dir;
}

inline std::map<std::string, FILE *> &trace_files() {
    static std::map<std::string, FILE *> files;
    return files;
}

inline FILE *trace_file(const char *name) {
    std::map<std::string, FILE *> &files = trace_files();
    std::map<std::string, FILE *>::iterator it = files.find(name);
    if (it != files.end()) return it->second;
    const std::string path = trace_dir() + "/" + name + ".hex";
    FILE *f = std::fopen(path.c_str(), "w");
    if (!f) {
        std::fprintf(stderr, "lbgen csim: cannot write trace file %s\n", path.c_str());
        std::exit(3);
    }
    files[name] = f;
    return f;
}

inline void trace_close() {
    std::map<std::string, FILE *> &files = trace_files();
    for (std::map<std::string, FILE *>::iterator it = files.begin(); it != files.end(); ++it) std::fclose(it->second);
    files.clear();
}

template <int W>
void trace_tap(hls::stream<ap_uint<W> > &s, unsigned beats, const char *name) {
    if (trace_dir().empty()) return;
    if (s.size() != beats) {
        std::fprintf(stderr, "lbgen csim: stream %s holds %u beats after its layer, expected %u\n", name,
                     (unsigned)s.size(), beats);
        std::exit(3);
    }
    FILE *f = trace_file(name);
    for (unsigned b = 0; b < beats; b++) {
        const ap_uint<W> v = s.read();
        std::fputs(to_hex(v).c_str(), f);
        std::fputc('\n', f);
        s.write(v);
    }
}

}  // namespace csim
}  // namespace lbgen

#endif  // __SYNTHESIS__
#endif  // LBGEN_CSIM_HPP
