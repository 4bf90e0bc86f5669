"""Model passes: transformations of the (torch) model that run *before* it is
lowered to the IR, in the order :data:`lbgen.pipeline.MODEL_PASSES` lists.

* :mod:`.ptq` (with :mod:`.clipping`): ``--calib``, post-training
  quantization of a float model into lbgen.quant modules;
* :mod:`.bits_budget` (with :mod:`.allocation`): ``--bits-budget``, a copy of
  the model whose hidden integer layers give each output channel its own width.

The Brevitas translation (:func:`lbgen.frontend.brevitas_frontend.translate`)
and the input quantizer of a float input (:func:`lbgen.frontend.input_format.
add_input_quantizer`) are model passes too; they live with the frontends
whose model representation they build. The passes on the IR (``Graph ->
Graph``) are the modules of :mod:`lbgen.passes`.

Importing this package is light (no torch): :mod:`.allocation` and
:mod:`.clipping` are numpy only; :mod:`.ptq` and :mod:`.bits_budget` import
torch when they are imported.
"""
