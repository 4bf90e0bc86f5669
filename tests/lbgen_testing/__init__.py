"""Test helpers of lbgen, kept out of the product (tests/ is on pytest's
``pythonpath``; bench/ puts it on ``sys.path``):

* :mod:`.common` -- the shipped examples' paths, ``lbgen`` in a fresh process,
  small quantized torch models, IR comparison;
* :mod:`.graphs` -- random, already-folded IR graphs and input frames;
* :mod:`.mutation` -- single-bit weight and threshold flips and where they sit
  in the emitted ROM images;
* :mod:`.rtl` -- the emitted top's port widths and stream formats, for testbenches;
* :mod:`.params_text` -- ROM initialisers of the emitted ``lbgen_params.h`` as text;
* :mod:`.synthesis_paths` -- an emitted design copied with the ``__SYNTHESIS__``
  branches of lbgen's HLS headers switched on, for g++.
"""
