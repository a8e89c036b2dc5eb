"""Grad-CAM heat maps and the plain-words lung zone where the model looked."""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image
from pytorch_grad_cam import GradCAM

from learning.data import letterbox_box, to_tensor
from learning.model import XrayNet

CONVENTION = (
    "the patient's right is on the left of the image, as on a frontal film viewed in "
    "the standard radiological orientation"
)
ZONES = ("upper", "middle", "lower")


@dataclass(frozen=True)
class LungLocation:
    side: str  # "right lung" | "left lung" | "both lungs"  (the patient's sides)
    zone: str  # "upper" | "middle" | "lower"
    share: float  # fraction of the activation in that zone of that side
    description: str


@dataclass(frozen=True)
class Explanation:
    probabilities: np.ndarray  # from Grad-CAM's own forward pass
    predicted_index: int
    heatmap: np.ndarray  # float32 in [0, 1], the input image's height x width (or the shape asked for)
    location: LungLocation


def explain(
    net: XrayNet, image: np.ndarray, size: int, shape: tuple[int, int] | None = None, target: int | None = None
) -> Explanation:
    """One forward and backward pass: probabilities and the heat map for the predicted class, or for
    the class at index `target` ("why not viral?": where the evidence for viral lies).

    `shape` is the heat map's (height, width), the image's by default: an overlay is drawn at the
    size a viewer shows it, with the image's aspect ratio, not at the film's full size."""
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    net = net.eval()
    x = to_tensor(image, size).unsqueeze(0).to(next(net.parameters()).device)
    with GradCAM(model=net, target_layers=[net.cam_layer]) as cam:
        # no targets: Grad-CAM explains the top class of its own forward pass, which also gives
        # the probabilities, so the model runs once per explained prediction
        targets = None if target is None else [ClassifierOutputTarget(target)]
        grayscale = cam(input_tensor=x, targets=targets)[0]
        probabilities = cam.outputs.detach().float().softmax(dim=1)[0].cpu().numpy()
    # the model saw the image letterboxed: cut the padding off the map before scaling it back,
    # so the heat stays registered to the radiograph
    top, left, height, width = letterbox_box(image.shape[0], image.shape[1], size)
    heatmap = _resize(grayscale[top : top + height, left : left + width], shape or image.shape)
    return Explanation(probabilities, int(np.argmax(probabilities)), heatmap, locate(heatmap))


def _resize(heatmap: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    resized = Image.fromarray(heatmap.astype(np.float32), mode="F").resize(
        (shape[1], shape[0]), Image.Resampling.BILINEAR
    )
    out = np.asarray(resized, dtype=np.float32)
    top = float(out.max())
    return np.clip(out / top, 0, 1) if top > 0 else np.zeros(shape, dtype=np.float32)


def locate(heatmap: np.ndarray) -> LungLocation:
    """Which lung and zone hold most of the activation, in the radiological convention."""
    total = float(heatmap.sum())
    if total <= 0:
        return LungLocation("both lungs", "middle", 0.0, "The heat map is flat: no region stands out.")
    height, width = heatmap.shape
    image_left = float(heatmap[:, : width // 2].sum()) / total
    if width < 2:
        side, columns = "both lungs", slice(0, width)  # one column has no sides
    elif image_left >= 0.6:
        side, columns = "right lung", slice(0, width // 2)  # image left = patient's right
    elif image_left <= 0.4:
        side, columns = "left lung", slice(width // 2, width)
    else:
        side, columns = "both lungs", slice(0, width)
    # thirds by height; a map under three rows tall leaves a zone empty (share 0) instead of failing
    bounds = np.linspace(0, height, 4).round().astype(int)
    shares = [float(heatmap[bounds[i] : bounds[i + 1], columns].sum()) / total for i in range(3)]
    zone_index = int(np.argmax(shares))
    zone = ZONES[zone_index]
    where = f"the {zone} zone of the patient's {side}" if side != "both lungs" else f"the {zone} zones of both lungs"
    description = f"Most of the activation is in {where} ({shares[zone_index]:.0%} of it); {CONVENTION}."
    return LungLocation(side, zone, round(shares[zone_index], 3), description)


def overlay_png(image: np.ndarray, heatmap: np.ndarray, text: dict[str, str] | None = None) -> bytes:
    """The heat map as a transparent PNG (colour from 'jet', alpha from the heat) to lay over the
    X-ray in the browser, where an opacity slider controls it. `text` goes into the file as PNG
    text chunks (the lung zone: the file alone says what it shows)."""
    from matplotlib import colormaps
    from PIL.PngImagePlugin import PngInfo

    # uint8 indices into the colour table give uint8 RGBA directly: 4 bytes a pixel, where floats
    # took 64 (a 36 MP overlay once needed more than 2 GB)
    levels = np.rint(np.clip(heatmap, 0, 1) * 255).astype(np.uint8)
    rgba = colormaps["jet"](levels, bytes=True)
    rgba[..., 3] = np.minimum(levels.astype(np.uint16) * 6 // 5, 255).astype(np.uint8)
    buffer = io.BytesIO()
    info = PngInfo()
    for key, value in (text or {}).items():
        info.add_itxt(key, value)  # international text: the description may hold any character
    Image.fromarray(rgba, mode="RGBA").save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()
