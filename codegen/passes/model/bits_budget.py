"""``--bits-budget``: per-channel weight widths, a model pass before lowering.

A copy of the model whose hidden k-bit integer layers become ChannelBitsLinear
/ ChannelBitsConv2d with one width per output channel, chosen by
:func:`lbgen.passes.model.allocation.allocate_bits` (least quantization noise
under the average budget); the lowering then stores each channel at its own
width (``MatVec.channel_bits``).
"""

from __future__ import annotations

from ...errors import UsageError
from ...frontend.torch_frontend import _is_conv, _segments, _torch, _walk


def allocate_channel_bits(model, budget: float, lo: int = 2):
    """--bits-budget: a copy of ``model`` whose hidden k-bit integer layers give each
    output channel its own width.

    Every hidden IntLinear / IntConv2d (not the first or last layer, which keep
    their width as with --w) becomes a ChannelBitsLinear / ChannelBitsConv2d
    whose channel widths (``lo`` .. the layer's own width) average at most
    ``budget`` bits and minimise the quantization noise for the channels'
    ranges (lbgen.quant.allocate_bits; the range is the one the layer's
    quantizer clips to, max |w| of the channel). Other layers are unchanged.
    """
    import copy

    from ... import quant

    model = copy.deepcopy(model)
    model.eval()
    segments = _segments(_walk(model))
    hidden = [seg.linear for seg in segments[1:-1]]
    eligible = [st for st in hidden if type(st.module) in (quant.IntLinear, quant.IntConv2d,
                                                            quant.ChannelBitsLinear, quant.ChannelBitsConv2d)]
    if not eligible:
        raise UsageError(f"--bits-budget {budget:g}: no hidden layer has k-bit integer weights (IntLinear or "
                         "IntConv2d; the first and last layer keep their width)")
    narrow = [f"layer {st.path} has {st.module.weight_bits}-bit weights" for st in eligible
              if st.module.weight_bits < budget]
    if narrow:
        raise UsageError(f"--bits-budget {budget:g} is more than a layer's own width ("
                         + "; ".join(narrow) + "); the budget averages widths up to each layer's width")
    torch = _torch()
    for st in eligible:
        old = st.module
        with torch.no_grad():
            alpha = old.weight.detach().double().abs().amax(dim=1).numpy()
        bits = quant.allocate_bits(alpha, budget, lo=lo, hi=int(old.weight_bits))
        if _is_conv(old):
            new = quant.ChannelBitsConv2d(old.in_channels, old.out_channels, old.kernel_size, old.stride,
                                          old.padding, bias=old.bias is not None, bits=int(old.weight_bits),
                                          channel_bits=bits)
        else:
            new = quant.ChannelBitsLinear(old.in_features, old.out_features, bits=int(old.weight_bits),
                                          bias=old.bias is not None, channel_bits=bits)
        missing, unexpected = new.load_state_dict(old.state_dict(), strict=False)
        if unexpected or set(missing) - {"channel_bits"}:
            raise UsageError(f"layer {st.path}: cannot carry its parameters over ({missing}, {unexpected})")
        new.eval()
        parent, _, attr = st.path.rpartition(".")
        setattr(model.get_submodule(parent) if parent else model, attr, new)   # also a Sequential's "4"
    return model
