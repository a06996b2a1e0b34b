"""ONNX export of fitted multimodal pipelines, run by onnxruntime.

:func:`export_onnx` turns a fitted ``Pipeline(MultimodalFuser, estimator)``
into ONNX graphs: the networks (image and text encoders, the neural head)
through ``torch.onnx``, the scikit-learn steps through skl2onnx.
:class:`OnnxPipeline` runs them from the same raw DataFrame (photo paths,
text, attributes), reading the cells in Python as skmm does, and saves and
loads them as a directory. Needs ``pip install skmm[onnx]``; nothing here
imports torch or onnx until it is used.
"""

from ._export import export_onnx
from ._graphs import ExportError
from ._runner import OnnxPipeline

__all__ = ["ExportError", "OnnxPipeline", "export_onnx"]
