// lbgen HLS library: the kernels around a convolution's MVAU.
//
//   lbgen::sliding_window<CFG>(in, out)   im2col on a line buffer (the SWU)
//   lbgen::maxpool<CFG>(in, out)          max-pool, stride == kernel, on integer codes
//
// Stream contract (docs/emit-contract.md, convolutions): a feature map of C channels,
// H rows and W columns streams in NHWC order, pixels row-major (y, then x),
// each pixel's channels in order. A beat carries N consecutive elements of E
// bits, element i at bits [i*E +: E]; N divides C, so a beat never spans two
// pixels. Element codes are unsigned bit patterns; a padded position is the
// configuration's PAD code (0 when the configuration has no PAD).
// Both kernels process ONE frame per call (like lbgen::mvau) in one flattened
// loop at II=1 that reads at most one beat and writes at most one beat per
// iteration; all state is local and starts afresh with every call.
//
// ---------------------------------------------------------------------------
// sliding_window<CFG>(hls::stream<ap_uint<SIMD*E> > &in, hls::stream<ap_uint<SIMD*E> > &out)
//
//   struct conv0_swu_config {
//       static const unsigned C, IN_H, IN_W;   // input feature map
//       static const unsigned K_H, K_W;        // kernel
//       static const unsigned S_H, S_W;        // stride
//       static const unsigned P_H, P_W;        // zero padding on each side (P < K)
//       static const unsigned SIMD, E;         // elements per beat (SIMD | C), bits per element
//       static const unsigned PAD;             // optional (default 0): code of a padded element, < 2^E
//   };
//
// PAD is the code of the value 0 (torch pads with zeros in value): 0 for plain
// unsigned levels, the zero level of a signed or zero-pointed input streamed as
// unsigned levels (lbgen decides it: lbgen.ir.ConvGeom.pad).
//
// OUT_H = (IN_H + 2*P_H - K_H)/S_H + 1 and OUT_W likewise (sliding_window_shape
// derives these and the other numbers below). For each output pixel (oy, ox),
// row-major, the kernel writes the window vector of K_H*K_W*C elements as
// K_H*K_W*C/SIMD beats: element (ky*K_W + kx)*C + c is channel c of input pixel
// (oy*S_H - P_H + ky, ox*S_W - P_W + kx), or the code PAD outside the image. That is
// the MVAU's input vector of a convolution whose weight matrix has its columns
// in (ky, kx, c) order.
//
// Line buffer and schedule (finn-hlslib ConvolutionInputGenerator in spirit).
// Let CF = C/SIMD (beats per pixel), RB = IN_W*CF (beats per input row),
// WB = K_H*K_W*CF (beats per window) and OB = OUT_W*WB (beats per output row).
// The frame is cut into blocks: a warm-up block that reads the input rows of
// output row 0, then one block per output row oy that writes its OB beats from
// rows already in the buffer while it reads the rows that output row oy+1 adds
// (rows no window touches, between windows when S_H > K_H or after the last
// one, are read and dropped; the last block reads the trailing rows). Inside a
// block the reads and the writes run side by side, one each per iteration, so
// a block takes max(OB, its read beats) iterations:
//
//   ITERATIONS  = WARMUP_ROWS*RB + sum over oy of max(OB, READ_ROWS(oy)*RB)
//   WARMUP_ROWS = min(K_H - P_H, IN_H)
//   READ_ROWS(oy) = min((oy+1)*S_H + K_H - P_H, IN_H) - min(oy*S_H + K_H - P_H, IN_H)
//                 (S_H in the steady state, fewer at the bottom; the last block reads what is left)
//
// That is
//   * OUT_BEATS + WARMUP_ROWS*RB when OB >= S_H*RB (output-bound; about K_H*K_W >= S_H*S_W): the
//     warm-up is about one input row more than an in-order design must wait for (the first
//     window's last beat needs K_H-1-P_H rows and K_W-P_W pixels); it buys a buffer in which a
//     block never reads a row it writes;
//   * at most IN_BEATS + (ceil(P_H/S_H) + 1)*OB otherwise (input-bound: only the blocks whose reads
//     are clipped by the bottom of the image, and the last one, write more than they read);
// so ITERATIONS <= max(IN_BEATS + (ceil(P_H/S_H) + 1)*OB, OUT_BEATS + WARMUP_ROWS*RB), and
// ITERATIONS < IN_BEATS + OUT_BEATS unless the first window needs the whole image (WARMUP_ROWS == IN_H).
//
// Buffer: BUF_ROWS = K_H + min(S_H, K_H) rows of RB beats (ram_s2p: one
// write port for the reader, one read port for the writer): the K_H rows of
// the current output row's windows plus the rows the next output row adds.
// Only real rows and columns are stored; padding is never buffered. A block
// writes other rows than it reads. The buffer needs no DEPENDENCE pragma: no
// value written to it depends on a value read from it (no recurrence), so the
// tool's ordering of a read after the previous iteration's write fits II=1.
//
// ---------------------------------------------------------------------------
// maxpool<CFG>(hls::stream<ap_uint<PE*E> > &in, hls::stream<ap_uint<PE*E> > &out)
//
//   struct pool0_config {
//       static const unsigned C, IN_H, IN_W;   // input feature map
//       static const unsigned K, S;            // window and stride; S == K
//       static const unsigned PE, E;           // elements per beat (PE | C), bits per element
//   };
//
// OUT_H = (IN_H - K)/S + 1, OUT_W likewise (floor: rows and columns that do
// not fill a window are read and dropped). Output element (oy, ox, c) is the
// max over ky, kx < K of input (oy*S + ky, ox*S + kx, c), codes compared as
// unsigned integers (the order of the levels; for bipolar codes, OR). NHWC in
// and out, PE elements per beat. ITERATIONS = IN_BEATS: one read per
// iteration, a write on the last beat of each window. Buffers: OUT_W*C/PE
// beats (OUT_W*C elements) of running maxima over the window rows, and a
// delay line of C/PE beats holding the running maxima across the current
// window row (registers; shift-register LUTs in an FPGA).
//
// C-simulation: build with -DLBGEN_COUNT_ITERATIONS to count the loop
// iterations of both kernels in lbgen::loop_iterations() (tests only).
#ifndef LBGEN_CONV_HPP
#define LBGEN_CONV_HPP

#include "lbgen_common.hpp"

#if defined(LBGEN_COUNT_ITERATIONS) && !defined(__SYNTHESIS__)
namespace lbgen {
// Loop iterations run by sliding_window and maxpool since the last reset (C-simulation tests).
inline unsigned long long &loop_iterations() {
    static unsigned long long n = 0;
    return n;
}
}  // namespace lbgen
#define LBGEN_COUNT_ITERATION() (++::lbgen::loop_iterations())
#else
#define LBGEN_COUNT_ITERATION() ((void)0)
#endif

namespace lbgen {

namespace detail {

constexpr unsigned umin(unsigned a, unsigned b) { return a < b ? a : b; }
constexpr unsigned umax(unsigned a, unsigned b) { return a > b ? a : b; }

// Output size of a window K, stride S, padding P over IN positions (0 if not even one fits).
constexpr unsigned out_dim(unsigned in, unsigned k, unsigned s, unsigned p) {
    return (s == 0 || k == 0 || in + 2 * p < k) ? 0 : (in + 2 * p - k) / s + 1;
}

// Input rows the block of output row oy must have read by its end (the warm-up
// block is oy = -1): those of output row oy+1, rows [0, (oy+1)*S + K - P). In the
// last block that is every row: OUT_H*S > IN_H + 2P - K, so OUT_H*S + K - P > IN_H.
constexpr unsigned swu_target_rows(int oy, unsigned in_h, unsigned k, unsigned s, unsigned p) {
    return umin((unsigned)(oy + 1) * s + k - p, in_h);
}

// Loop iterations of sliding_window for one frame (see the comment at the top).
constexpr unsigned swu_iterations(unsigned in_h, unsigned out_h, unsigned k, unsigned s, unsigned p,
                                  unsigned row_beats, unsigned out_row_beats) {
    unsigned read = swu_target_rows(-1, in_h, k, s, p);
    unsigned total = read * row_beats;
    for (unsigned oy = 0; oy < out_h; oy++) {
        const unsigned target = swu_target_rows((int)oy, in_h, k, s, p);
        total += umax((target - read) * row_beats, out_row_beats);
        read = target;
    }
    return total;
}

// Elementwise unsigned max of two beats of N elements of E bits.
template <unsigned N, unsigned E>
inline ap_uint<N * E> lane_max(const ap_uint<N * E> &a, const ap_uint<N * E> &b) {
#pragma HLS INLINE
    ap_uint<N * E> r = 0;
    for (unsigned i = 0; i < N; i++) {
#pragma HLS UNROLL
        const ap_uint<E> x = a.range(i * E + E - 1, i * E);
        const ap_uint<E> y = b.range(i * E + E - 1, i * E);
        r.range(i * E + E - 1, i * E) = x > y ? x : y;
    }
    return r;
}

// CFG::PAD if the configuration declares it, else 0 (configurations written before PAD existed).
template <class T>
struct void_of {
    typedef void type;
};
template <class CFG, class = void>
struct swu_pad {
    static const unsigned value = 0;
};
template <class CFG>
struct swu_pad<CFG, typename void_of<decltype(CFG::PAD)>::type> {
    static const unsigned value = CFG::PAD;
};

// A beat of N elements of E bits, each the code V.
template <unsigned N, unsigned E>
inline ap_uint<N * E> replicate(unsigned v) {
#pragma HLS INLINE
    ap_uint<N * E> r = 0;
    for (unsigned i = 0; i < N; i++) {
#pragma HLS UNROLL
        r.range(i * E + E - 1, i * E) = v;
    }
    return r;
}

}  // namespace detail

// The numbers of a sliding-window configuration.
template <class CFG>
struct sliding_window_shape {
    static const unsigned C = CFG::C, IN_H = CFG::IN_H, IN_W = CFG::IN_W;
    static const unsigned K_H = CFG::K_H, K_W = CFG::K_W, S_H = CFG::S_H, S_W = CFG::S_W;
    static const unsigned P_H = CFG::P_H, P_W = CFG::P_W, SIMD = CFG::SIMD, E = CFG::E;
    static const unsigned PAD = detail::swu_pad<CFG>::value;
    static const unsigned OUT_H = detail::out_dim(IN_H, K_H, S_H, P_H);
    static const unsigned OUT_W = detail::out_dim(IN_W, K_W, S_W, P_W);
    static const unsigned CF = SIMD ? C / SIMD : 0;            // beats per pixel
    static const unsigned ROW_BEATS = IN_W * CF;               // beats per input row
    static const unsigned WINDOW_BEATS = K_H * K_W * CF;       // beats per output pixel
    static const unsigned OUT_ROW_BEATS = OUT_W * WINDOW_BEATS;
    static const unsigned IN_BEATS = IN_H * ROW_BEATS;         // per frame
    static const unsigned OUT_BEATS = OUT_H * OUT_ROW_BEATS;   // per frame
    static const unsigned BUF_ROWS = K_H + detail::umin(S_H, K_H);
    static const unsigned BUF_BEATS = BUF_ROWS * ROW_BEATS;
    static const unsigned WARMUP_ROWS = detail::umin(K_H - P_H, IN_H);
    static const unsigned ITERATIONS =
        detail::swu_iterations(IN_H, OUT_H, K_H, S_H, P_H, ROW_BEATS, OUT_ROW_BEATS);
};

template <class CFG>
struct check_sliding_window {
    typedef sliding_window_shape<CFG> G;
    static_assert(G::SIMD >= 1 && G::E >= 1, "sliding_window: SIMD and E must be at least 1");
    static_assert(G::C >= 1 && G::C % G::SIMD == 0, "sliding_window: SIMD must divide C");
    static_assert(G::IN_H >= 1 && G::IN_W >= 1, "sliding_window: empty input");
    static_assert(G::K_H >= 1 && G::K_W >= 1 && G::S_H >= 1 && G::S_W >= 1,
                  "sliding_window: kernel and stride must be at least 1");
    static_assert(G::P_H < G::K_H && G::P_W < G::K_W, "sliding_window: padding must be smaller than the kernel");
    static_assert(G::OUT_H >= 1 && G::OUT_W >= 1, "sliding_window: the kernel does not fit the padded input");
    static_assert(G::E >= 32 || G::PAD < (1ULL << G::E), "sliding_window: PAD must be a code of E bits (< 2^E)");
    static const bool ok = true;
};

// One frame: IN_BEATS beats in, OUT_BEATS beats out, ITERATIONS loop iterations.
template <class CFG>
void sliding_window(hls::stream<ap_uint<CFG::SIMD * CFG::E> > &in, hls::stream<ap_uint<CFG::SIMD * CFG::E> > &out) {
#pragma HLS INLINE off
    static_assert(check_sliding_window<CFG>::ok, "sliding_window configuration");
    typedef sliding_window_shape<CFG> G;
    typedef ap_uint<CFG::SIMD * CFG::E> beat_t;
    const unsigned R = G::BUF_ROWS, RB = G::ROW_BEATS, CF = G::CF;
    const unsigned KWB = G::K_W * CF;  // beats of one window row
    const unsigned ADVANCE = detail::umin(G::S_H, G::K_H);  // buffer rows from one output row to the next
    const beat_t pad_beat = detail::replicate<CFG::SIMD, CFG::E>(G::PAD);  // a beat of padding

    // Row slot n % R holds the n-th stored input row, so the rows of a window
    // sit in consecutive slots. Rows between windows (S_H > K_H) are not
    // stored. Rows after the last window are, harmlessly: fewer than
    // min(S_H, K_H) of them (else another output row would fit) follow the
    // last output row's K_H rows, and R = K_H + min(S_H, K_H).
    beat_t buf[G::BUF_ROWS][G::ROW_BEATS];
#pragma HLS BIND_STORAGE variable=buf type=ram_s2p impl=auto

    // reader: input row rd_row, beat rd_col of it; block reads until rd_row == rd_target
    unsigned rd_row = 0, rd_col = 0, rd_slot = 0;
    unsigned rd_phase = G::P_H % G::S_H;  // (rd_row + P_H) % S_H: row ky = rd_phase of a window if < K_H
    unsigned rd_target = G::WARMUP_ROWS;
    unsigned rd_goal = G::K_H - G::P_H;   // rd_target before clipping to the image: (oy+1)*S_H + K_H - P_H
    // writer: window ox of the current output row (none in the warm-up block), window row ky, beat kc
    bool wr_on = false, wr_done = true;
    unsigned ox = 0, ky = 0, kc = 0;
    int y0 = -(int)G::P_H;                 // input row of window row 0: oy*S_H - P_H
    int xc0 = -(int)(G::P_W * CF);         // (input column of window column 0) * CF
    unsigned base = (R - G::P_H % R) % R;  // slot of window row 0 (when it is a real row)

    // ITERATIONS = WARMUP_ROWS*RB + sum over output rows of max(OUT_ROW_BEATS, beats read in that block)
    for (unsigned i = 0; i < G::ITERATIONS; i++) {
#pragma HLS PIPELINE II=1
        LBGEN_COUNT_ITERATION();
        // read one input beat if this block still needs rows
        if (rd_row < rd_target) {
            const beat_t x = in.read();
            const bool keep = rd_phase < G::K_H;  // the row is a window row (always when S_H <= K_H)
            if (keep) buf[rd_slot][rd_col] = x;
            if (rd_col == RB - 1) {
                rd_col = 0;
                rd_row++;
                if (keep) rd_slot = rd_slot == R - 1 ? 0 : rd_slot + 1;
                rd_phase = rd_phase == G::S_H - 1 ? 0 : rd_phase + 1;
            } else {
                rd_col++;
            }
        }
        // write one beat of the current output row
        if (!wr_done) {
            const int iy = y0 + (int)ky;
            const int col = xc0 + (int)kc;  // input column * CF + channel fold
            const bool pad = iy < 0 || iy >= (int)G::IN_H || col < 0 || col >= (int)RB;
            const unsigned slot = base + ky >= R ? base + ky - R : base + ky;
            beat_t y = pad_beat;
            if (!pad) y = buf[slot][col];
            out.write(y);
            if (kc == KWB - 1) {
                kc = 0;
                if (ky == G::K_H - 1) {
                    ky = 0;
                    if (ox == G::OUT_W - 1) {
                        ox = 0;
                        xc0 = -(int)(G::P_W * CF);
                        wr_done = true;
                    } else {
                        ox++;
                        xc0 += (int)(G::S_W * CF);
                    }
                } else {
                    ky++;
                }
            } else {
                kc++;
            }
        }
        // both sides done: the next block (the next output row)
        if (wr_done && rd_row == rd_target) {
            if (wr_on) {
                y0 += (int)G::S_H;
                base = base + ADVANCE >= R ? base + ADVANCE - R : base + ADVANCE;
            }
            wr_on = true;
            wr_done = false;
            rd_goal += G::S_H;
            rd_target = detail::umin(rd_goal, G::IN_H);
        }
    }
}

// ---------------------------------------------------------------------------

// The numbers of a max-pool configuration.
template <class CFG>
struct maxpool_shape {
    static const unsigned C = CFG::C, IN_H = CFG::IN_H, IN_W = CFG::IN_W;
    static const unsigned K = CFG::K, S = CFG::S, PE = CFG::PE, E = CFG::E;
    static const unsigned OUT_H = detail::out_dim(IN_H, K, S, 0);
    static const unsigned OUT_W = detail::out_dim(IN_W, K, S, 0);
    static const unsigned CF = PE ? C / PE : 0;    // beats per pixel
    static const unsigned ROW_BEATS = IN_W * CF;
    static const unsigned IN_BEATS = IN_H * ROW_BEATS;
    static const unsigned OUT_BEATS = OUT_H * OUT_W * CF;
    static const unsigned BUF_BEATS = OUT_W * CF;  // running maxima: OUT_W*C elements
    static const unsigned ITERATIONS = IN_BEATS;
};

template <class CFG>
struct check_maxpool {
    typedef maxpool_shape<CFG> G;
    static_assert(G::PE >= 1 && G::E >= 1, "maxpool: PE and E must be at least 1");
    static_assert(G::C >= 1 && G::C % G::PE == 0, "maxpool: PE must divide C");
    static_assert(G::K >= 1, "maxpool: K must be at least 1");
    static_assert(G::S == G::K, "maxpool: the stride must equal the kernel (S == K)");
    static_assert(G::OUT_H >= 1 && G::OUT_W >= 1, "maxpool: the window does not fit the input");
    static const bool ok = true;
};

// One frame: IN_BEATS beats in, OUT_BEATS beats out, IN_BEATS loop iterations.
template <class CFG>
void maxpool(hls::stream<ap_uint<CFG::PE * CFG::E> > &in, hls::stream<ap_uint<CFG::PE * CFG::E> > &out) {
#pragma HLS INLINE off
    static_assert(check_maxpool<CFG>::ok, "maxpool configuration");
    typedef maxpool_shape<CFG> G;
    typedef ap_uint<CFG::PE * CFG::E> beat_t;
    const unsigned K = G::K, CF = G::CF;

    // vertical running maxima of the current output row, word ox*CF + cf. It
    // is read, maxed and written back (ky > 0, so K >= 2) once per input row:
    // IN_W*CF >= K >= 2 iterations apart, never in consecutive iterations.
    beat_t vmax[G::BUF_BEATS];
#pragma HLS BIND_STORAGE variable=vmax type=ram_s2p impl=auto
#pragma HLS DEPENDENCE variable=vmax type=inter dependent=false
    // horizontal running maxima of the current window row: a delay line of CF
    // beats, so line[CF-1] is the value of the same channel fold one pixel back
    beat_t line[G::CF];
#pragma HLS ARRAY_PARTITION variable=line complete dim=1

    // Rows and columns after the last window (fewer than K) never reach
    // kx == K-1 or ky == K-1, so they write nothing out; what they leave in
    // vmax and line is overwritten before it is read again (ky == 0, kx == 0).
    unsigned x = 0;                   // input column
    unsigned kx = 0, ky = 0, cf = 0;  // x % K, y % K, channel fold
    unsigned vbase = 0;               // (x / K) * CF

    // ITERATIONS = IN_BEATS
    for (unsigned i = 0; i < G::ITERATIONS; i++) {
#pragma HLS PIPELINE II=1
        LBGEN_COUNT_ITERATION();
        const beat_t v = in.read();
        const beat_t h = kx == 0 ? v : detail::lane_max<CFG::PE, CFG::E>(line[CF - 1], v);
        if (kx == K - 1) {
            const unsigned a = vbase + cf;
            const beat_t m = ky == 0 ? h : detail::lane_max<CFG::PE, CFG::E>(vmax[a], h);
            if (ky == K - 1) {
                out.write(m);
            } else {
                vmax[a] = m;
            }
        }
        for (unsigned k = CF - 1; k > 0; k--) {
#pragma HLS UNROLL
            line[k] = line[k - 1];
        }
        line[0] = h;
        // next beat: channel fold, then column, then row
        if (cf == CF - 1) {
            cf = 0;
            if (x == G::IN_W - 1) {
                x = 0;
                kx = 0;
                vbase = 0;
                ky = ky == K - 1 ? 0 : ky + 1;
            } else {
                x++;
                if (kx == K - 1) {
                    kx = 0;
                    vbase += CF;
                } else {
                    kx++;
                }
            }
        } else {
            cf++;
        }
    }
}

}  // namespace lbgen

#endif  // LBGEN_CONV_HPP
