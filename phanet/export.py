"""ONNX export of a checkpoint, with a numerical parity check against PyTorch in onnxruntime.

The exported graph takes ``image [N, 3, S, S]`` float32, normalised with the checkpoint's mean/std
(the same tensor the PyTorch model takes), and returns plain tensors: ``expression_logits [N, E]``
and, where the model has them, ``pose_logits [N, P]`` and ``scale_weights [N, S]``. The batch axis is
dynamic. Label names, pose bins and preprocessing are stored in the ONNX model's metadata
(``metadata_props``) so the file is usable on its own.

We use the TorchScript-based exporter (``dynamo=False``): it is deterministic and works offline
with the opsets we need; the parity check guards whichever exporter is used. Parity is checked on
a batch of a different size than the one traced, which also proves the batch axis is dynamic.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

PARITY_ATOL = 1e-4


class ExportableModel(nn.Module):
    """Wraps a registry model so ``forward`` returns a tuple of tensors (no None, no NamedTuple)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.output_names = ["expression_logits"]
        if getattr(model, "num_poses", 0):
            self.output_names.append("pose_logits")
        if model.num_scales:
            self.output_names.append("scale_weights")

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.model(image)
        return tuple(getattr(out, name) for name in self.output_names)


def export_onnx(
    checkpoint: str | Path,
    out: str | Path,
    opset: int = 17,
    check: bool = True,
    atol: float = PARITY_ATOL,
    seed: int = 0,
) -> dict:
    """Export ``checkpoint`` to ``out`` (.onnx); returns ``{"out", "outputs", "opset", "max_abs_diff"}``.

    With ``check``, runs onnxruntime and PyTorch on the same random batch (of a size other than the
    traced one) and raises ``RuntimeError`` if any output differs by more than ``atol``.
    ``max_abs_diff`` is None when not checked.
    """
    try:
        import onnx
    except ImportError as err:
        raise ImportError("ONNX export needs onnx and onnxruntime: pip install 'phanet[export]'") from err
    from phanet.checkpoint import load_checkpoint

    model, meta = load_checkpoint(checkpoint, device="cpu")
    wrapper = ExportableModel(model).eval()
    data = model.data_config
    size = data.input_size
    generator = torch.Generator().manual_seed(seed)
    traced_batch = torch.randn(2, 3, size, size, generator=generator)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    dynamic_axes = {name: {0: "batch"} for name in ["image", *wrapper.output_names]}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning)  # "legacy exporter" notice
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        torch.onnx.export(
            wrapper,
            (traced_batch,),
            str(out),
            input_names=["image"],
            output_names=wrapper.output_names,
            dynamic_axes=dynamic_axes,
            opset_version=opset,
            do_constant_folding=True,
            dynamo=False,
        )
    wrapper.eval()  # the exporter restores the wrapper's previous mode; keep the model in eval

    proto = onnx.load(str(out))
    metadata = {
        "phanet_model": meta["model"]["name"],
        "label_space": json.dumps(meta["label_space"]),
        "input_size": str(size),
        "mean": json.dumps(list(data.mean)),
        "std": json.dumps(list(data.std)),
        "crop": json.dumps(data.crop),
        "outputs": json.dumps(wrapper.output_names),
    }
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(proto)
    onnx.save(proto, str(out))

    result = {"out": str(out), "outputs": list(wrapper.output_names), "opset": opset, "max_abs_diff": None}
    if check:
        check_batch = torch.randn(3, 3, size, size, generator=generator)
        diffs = onnx_parity(wrapper, out, check_batch)
        result["max_abs_diff"] = max(diffs.values())
        result["max_abs_diff_per_output"] = diffs
        if result["max_abs_diff"] > atol:
            raise RuntimeError(
                f"ONNX export of {checkpoint} differs from PyTorch by {result['max_abs_diff']:.3g} "
                f"(> {atol:g}) on {diffs}"
            )
    return result


def onnx_parity(wrapper: ExportableModel, onnx_path: str | Path, batch: torch.Tensor) -> dict[str, float]:
    """Max absolute difference per output between PyTorch and onnxruntime on ``batch [N, 3, S, S]``."""
    try:
        import onnxruntime as ort
    except ImportError as err:
        raise ImportError("the ONNX parity check needs onnxruntime: pip install 'phanet[export]'") from err

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    onnx_outputs = session.run(wrapper.output_names, {"image": batch.numpy()})
    with torch.inference_mode():
        torch_outputs = wrapper.eval()(batch)
    return {
        name: float(np.abs(ours.numpy().astype(np.float64) - theirs.astype(np.float64)).max())
        for name, ours, theirs in zip(wrapper.output_names, torch_outputs, onnx_outputs)
    }
