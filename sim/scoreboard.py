"""Compare observed AXI-Stream beats with the golden model and say where they differ.

Pure Python and numpy, no simulator: the cocotb testbench records raw beats
(cheaply, once per clock) and hands them here when the simulation is over.
Messages name the layer, the frame (0-based, in the order frames were sent),
the global output channel (beat index within the frame * PE + element index)
and the expected and observed values, e.g.

    layer 'fc1' frame 3 channel 17: expected 2, got 1

Detail messages are sorted by (frame, layer position in the pipeline,
channel), so the first one points at the most upstream layer of the earliest
frame that went wrong, which is where a bug shows first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np

from .streams import StreamSpec, decode_beats

#: Detail messages kept per stream and in total (summaries come on top).
MAX_PER_STREAM = 10
MAX_TOTAL = 40


@dataclass(order=True)
class Finding:
    key: tuple
    text: str = field(compare=False)


@dataclass
class StreamResult:
    """What one stream delivered and how it compares with the golden model."""

    spec: StreamSpec
    label: str
    values: np.ndarray                    # (complete frames, elements) observed values
    known: np.ndarray                     # same shape, False where the DUT drove X/Z
    beats_seen: int
    beats_expected: int
    wrong_elements: int = 0
    wrong_frames: int = 0
    tlast_errors: int = 0
    details: list[Finding] = field(default_factory=list)
    problems: list[Finding] = field(default_factory=list)   # missing/extra beats
    summary: Optional[str] = None

    @property
    def ok(self) -> bool:
        return not (self.wrong_elements or self.tlast_errors or self.problems)


def _frame_note(frame: int, phase1_frames: Optional[int]) -> str:
    if phase1_frames is not None and frame >= phase1_frames:
        return f" (throughput phase, frame {frame - phase1_frames} of it)"
    return ""


def check_stream(spec: StreamSpec, expected: np.ndarray, beats: Sequence[int | str], *, order: int,
                 label: Optional[str] = None, tlast: Optional[Sequence[int]] = None,
                 phase1_frames: Optional[int] = None, tlast_only: bool = False,
                 frame_base: int = 0) -> StreamResult:
    """Check the observed ``beats`` of one stream against ``expected`` (frames, elements) values.

    ``order`` is the stream's position in the pipeline (for sorting findings);
    ``tlast``, if given, holds the observed tlast bit of every beat and must be
    1 exactly on the last beat of each frame. ``tlast_only`` checks nothing but
    tlast (for m_axis when the same beats were already checked as the last
    layer's internal stream). ``frame_base``: the number of the first frame in
    messages (a shard of the test vectors names frames as the whole run would).
    """
    label = label or spec.label

    def fr(f: int) -> int:
        return f + frame_base if phase1_frames is None or f < phase1_frames else f
    expected = np.asarray(expected, dtype=np.int64)
    n_frames = expected.shape[0]
    want = n_frames * spec.beats
    seen = len(beats)
    use = min(seen, want)
    values, known = decode_beats(beats[:use], spec)        # (use, per_beat)
    full = use // spec.beats
    res = StreamResult(spec=spec, label=label,
                       values=values[:full * spec.beats].reshape(full, spec.elements),
                       known=known[:full * spec.beats].reshape(full, spec.elements),
                       beats_seen=seen, beats_expected=want)

    if use and not tlast_only:
        exp = expected.reshape(n_frames * spec.beats, spec.per_beat)[:use]
        bad = (values != exp) | ~known
        if bad.any():
            idx = np.argwhere(bad)                         # (k, 2): beat index, element
            res.wrong_elements = len(idx)
            frames = idx[:, 0] // spec.beats
            res.wrong_frames = len(np.unique(frames))
            for (b, e), f in zip(idx[:MAX_PER_STREAM], frames[:MAX_PER_STREAM]):
                ch = int(b % spec.beats) * spec.per_beat + int(e)
                got = int(values[b, e]) if known[b, e] else "X"
                res.details.append(Finding(
                    (int(f), order, 0, ch),
                    f"{label} frame {fr(int(f))} {spec.element_word} {ch}: expected {int(exp[b, e])}, got {got}"
                    + _frame_note(int(f), phase1_frames)))
    if tlast is not None:
        shown = 0
        for b in range(use):
            want_last = int(b % spec.beats == spec.beats - 1)
            if int(tlast[b]) != want_last:
                res.tlast_errors += 1
                if shown < MAX_PER_STREAM:
                    shown += 1
                    f, beat = divmod(b, spec.beats)
                    res.details.append(Finding(
                        (f, order, 1, beat),
                        f"{label} frame {fr(f)} beat {beat}: tlast {int(tlast[b])}, expected {want_last}"
                        + _frame_note(f, phase1_frames)))
    if tlast_only:
        pass
    elif seen < want:
        f, b = divmod(seen, spec.beats)
        res.problems.append(Finding(
            (order, 0), f"{label}: only {seen} of {want} output beats seen; "
                        f"the first missing is frame {fr(f)} beat {b}" + _frame_note(f, phase1_frames)))
    elif seen > want:
        res.problems.append(Finding((order, 1), f"{label}: {seen - want} beats more than the expected {want}"))
    if res.wrong_elements or res.tlast_errors:
        parts = []
        if res.wrong_elements:
            parts.append(f"{res.wrong_elements} wrong element{'s' if res.wrong_elements != 1 else ''} "
                         f"in {res.wrong_frames} of {n_frames} frames")
        if res.tlast_errors:
            parts.append(f"{res.tlast_errors} misplaced tlast")
        res.summary = f"{label}: " + ", ".join(parts)
    return res


def report(results: Sequence[StreamResult], extra: Sequence[str] = ()) -> list[str]:
    """All findings as messages: details (earliest frame, most upstream layer first), then
    ``extra`` (e.g. a timeout), missing/extra beats, and one summary line per bad stream."""
    details = sorted(d for r in results for d in r.details)[:MAX_TOTAL]
    problems = sorted(p for r in results for p in r.problems)
    out = [d.text for d in details] + list(extra) + [p.text for p in problems]
    out += [r.summary for r in results if r.summary]
    return out
