"""Inference engines: a network run by ONNX Runtime from its exported graph, or by torch as the fallback."""

from __future__ import annotations

import copy
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

import numpy as np
import torch
from torch import nn

from learning.model import ModelSpec, XrayNet, load_model

log = logging.getLogger(__name__)

ONNX_DIR = "onnx"  # beside weights.pt and spec.json in a version's model folder
ONNX_FILE = "model.onnx"
OPSET = 17
INPUT = "image"  # (N, 1, size, size) float32 in [0, 1], as learning.data.to_tensor makes it
OUTPUTS = ("probabilities", "embedding")
PARITY_TOLERANCE = 1e-4  # largest probability difference an export may show against torch
EngineKind = Literal["onnxruntime", "torch"]


class ExportMismatch(RuntimeError):
    """The exported graph does not give torch's probabilities: the version is served by torch instead."""


@dataclass(frozen=True)
class Threads:
    """A process's CPU threads for inference: within one operator, and across independent operators."""

    intra_op: int
    inter_op: int


def use_threads(threads: Threads) -> Threads:
    """Bound this process's torch threads; ONNX Runtime sessions created afterwards take the same
    counts (see `process_threads`). Returns what is in force. torch fixes its inter-op pool once per
    process, so a second, different inter-op count is logged and left as it was."""
    torch.set_num_threads(threads.intra_op)
    if torch.get_num_interop_threads() != threads.inter_op:
        try:
            torch.set_num_interop_threads(threads.inter_op)
        except RuntimeError:
            log.warning(
                "inter-op threads stay at %d (asked %d): torch sets them once per process",
                torch.get_num_interop_threads(),
                threads.inter_op,
            )
    return process_threads()


def process_threads() -> Threads:
    return Threads(torch.get_num_threads(), torch.get_num_interop_threads())


class Engine(Protocol):
    """What scoring and serving need from a network, whichever runtime runs it."""

    spec: ModelSpec
    kind: EngineKind
    dropout: float  # the rate of the dropout before the head (MC-dropout re-samples it)

    def run(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, 1, size, size) float32 images -> (probabilities (N, classes), embeddings (N, features))."""
        ...

    def head(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The head's weight (classes, features) and bias (classes), on the CPU."""
        ...


class TorchNet:
    """The torch network itself: training's engine, Grad-CAM's, and the fallback for serving."""

    kind: EngineKind = "torch"

    def __init__(self, net: XrayNet):
        self.net = net.eval()
        self.spec = net.spec
        self.dropout = float(net.dropout.p)

    @torch.inference_mode()
    def run(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32))
        embeddings = self.net.embed(x.to(next(self.net.parameters()).device))
        probabilities = self.net.head(embeddings).float().softmax(dim=1)
        return probabilities.cpu().numpy(), embeddings.float().cpu().numpy()

    def head(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.net.head.weight.detach().float().cpu(), self.net.head.bias.detach().float().cpu()


class OnnxNet:
    """A version's exported graph in an ONNX Runtime session. Sessions are thread-safe: the
    requests of one web process share it."""

    kind: EngineKind = "onnxruntime"

    def __init__(self, path: str | Path, spec: ModelSpec, dropout: float | None = None, threads: Threads | None = None):
        import onnx
        import onnxruntime as ort
        from onnx import numpy_helper

        threads = threads or process_threads()
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads.intra_op
        options.inter_op_num_threads = threads.inter_op
        # idle pool threads sleep instead of spinning: the cores are shared with the other processes
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.options = options
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.spec = spec
        self.dropout = spec.dropout if dropout is None else dropout
        graph = onnx.load(str(path), load_external_data=False).graph
        weights = {tensor.name: numpy_helper.to_array(tensor) for tensor in graph.initializer}
        # the head is the Gemm that reads the embedding; MC-dropout runs it again on dropped features
        gemm = next(node for node in graph.node if node.op_type == "Gemm" and node.input[0] == OUTPUTS[1])
        weight = weights[gemm.input[1]]
        transposed = any(attribute.name == "transB" and attribute.i == 1 for attribute in gemm.attribute)
        self._weight = torch.from_numpy(np.array(weight if transposed else weight.T, dtype=np.float32))
        self._bias = torch.from_numpy(np.array(weights[gemm.input[2]], dtype=np.float32))

    def run(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        probabilities, embeddings = self.session.run(
            list(OUTPUTS), {INPUT: np.ascontiguousarray(images, dtype=np.float32)}
        )
        return probabilities, embeddings

    def head(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self._weight, self._bias


def as_engine(net: XrayNet | Engine) -> Engine:
    return TorchNet(net) if isinstance(net, XrayNet) else net


def load_engine(
    directory: str | Path,
    net: XrayNet | None = None,
    prefer: EngineKind = "onnxruntime",
    threads: Threads | None = None,
) -> Engine:
    """THE choice of engine for a version's model folder: ONNX Runtime on its exported graph when
    there is one (and `prefer` asks for it), else torch on its weights (`net` if already loaded).
    Versions registered before exports existed, or whose export failed, are served by torch."""
    directory = Path(directory)
    graph = directory / ONNX_DIR / ONNX_FILE
    if prefer == "onnxruntime" and graph.exists():
        spec = net.spec if net is not None else ModelSpec.from_json((directory / "spec.json").read_text())
        try:
            return OnnxNet(graph, spec, threads=threads)
        except Exception:
            log.exception("the ONNX graph in %s cannot be run; torch runs this version", directory)
    return TorchNet(net if net is not None else load_model(directory))


class _Exported(nn.Module):
    """The graph ONNX Runtime runs: an image batch in, probabilities and embeddings out."""

    def __init__(self, net: XrayNet):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        embedding = self.net.embed(x)
        return self.net.head(embedding).softmax(dim=1), embedding


def export_onnx(net: XrayNet, target: str | Path) -> Path:
    """Write `net` as an ONNX graph (any batch size) and check that ONNX Runtime gives torch's
    probabilities on fixed inputs; raise ExportMismatch, and leave no file, when it does not.

    torch's TorchScript exporter (`dynamo=False`): the torch.export one needs onnxscript, and it
    took 4 s against 0.4 s for the tiny test network, 19 s against 7 s for EfficientNet-Lite0, with
    the same graph speed and the same parity."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    net = copy.deepcopy(net).cpu().float().eval()  # the caller's network stays where it is
    size = net.spec.image_size
    example = torch.rand(2, 1, size, size, generator=torch.Generator().manual_seed(0))
    with warnings.catch_warnings():
        # this exporter is deprecated in favour of the dynamo one (see above), and says so
        warnings.filterwarnings("ignore", "You are using the legacy TorchScript-based ONNX export", DeprecationWarning)
        warnings.filterwarnings("ignore", "The feature will be removed", DeprecationWarning)
        # XrayNet.embed branches on the channel count: the graph is traced at one channel, which is
        # what learning.data.to_tensor always gives
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        # some backbones pad with strided slices the exporter leaves unfolded: correct, a little slower
        warnings.filterwarnings("ignore", "Constant folding - Only steps=1", UserWarning)
        torch.onnx.export(
            _Exported(net),
            (example,),
            str(target),
            dynamo=False,
            opset_version=OPSET,
            input_names=[INPUT],
            output_names=list(OUTPUTS),
            dynamic_axes={name: {0: "batch"} for name in (INPUT, *OUTPUTS)},
        )
    try:
        check_parity(net, OnnxNet(target, net.spec))
    except Exception:
        target.unlink(missing_ok=True)
        raise
    return target


def check_parity(net: XrayNet, exported: Engine, images: np.ndarray | None = None) -> float:
    """The largest probability difference between torch and `exported` on fixed inputs (seeded
    noise, a blank and a saturated image, batches of one and three); ExportMismatch past 1e-4."""
    size = net.spec.image_size
    if images is None:
        noise = np.random.default_rng(0).random((1, 1, size, size), dtype=np.float32)
        images = np.concatenate([noise, np.zeros_like(noise), np.ones_like(noise)])
    reference = TorchNet(net)
    worst = 0.0
    for batch in (images[:1], images):
        expected, _ = reference.run(batch)
        found, _ = exported.run(batch)
        worst = max(worst, float(np.max(np.abs(expected - found))))
    if not worst <= PARITY_TOLERANCE:
        raise ExportMismatch(f"ONNX probabilities differ from torch's by {worst:.2e} (> {PARITY_TOLERANCE:g})")
    return worst
