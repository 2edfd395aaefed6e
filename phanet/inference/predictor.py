"""End-to-end inference: detect faces, align each onto the model's crop, run PhaNet in batches.

``Predictor.from_checkpoint(path).predict(image)`` is the Python API behind ``phanet predict``. The
preprocessing (crop size, mean, std) and the class names come from the checkpoint's JSON, so a
checkpoint is all a predictor needs. With ``detector=None`` every input is taken to be a face crop
already (``--no-detect``) and is resized to the model's input.

Faces of many images are classified together (``batch_size`` faces per model call), which is what
makes folder and video runs fast; :meth:`Predictor.predict_items` adds the robustness of a folder
run: an image whose detection or decoding fails yields an error result, never an exception.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from phanet.crop import fit_from_meta, padding_from_meta
from phanet.data.base import LabelSpace
from phanet.inference.align import align_face, warp_to_crop
from phanet.inference.detect import DetectedFace, FaceDetector, create_detector
from phanet.inference.sources import InputItem, evenly_spaced, to_rgb_array
from phanet.models.contract import ModelDataConfig, normalise

log = logging.getLogger(__name__)

MAX_PENDING_PIXELS = 48_000_000  # decoded pixels held at once by predict_items (~150 MB of RGB)


@dataclass
class FacePrediction:
    """What the model says about one face.

    box: ``(x0, y0, x1, y1)`` in the input image's pixels (the whole image with ``--no-detect``).
    score: detector confidence, or None without detection.
    landmarks: ``[5, 2]`` detector landmarks, or None.
    expression: the most probable expression; probabilities: softmax over all expressions.
    pose: the most probable pose bin (None for models without a pose branch); yaw/pitch: that bin's
        nominal angles in degrees where the label space gives them; pose_probabilities: softmax.
    scale_weights: the pose-adaptive weights ``beta`` over attention scales (None without attention).
    matrix: ``[2, 3]`` similarity mapping image pixels to crop pixels.
    attention: ``[size, size]`` float in [0, 1], the scale-weighted attention over the crop, when asked.
    crop: the ``[size, size, 3]`` uint8 crop the model saw, when attention was asked.
    realigned: whether the face was cut again with the checkpoint's profile correction
        (:mod:`phanet.inference.realign`) and these answers are the second crop's.
    retried: whether the detector found the face in its second, more permissive pass, on an image where the
        first found none (:attr:`~phanet.inference.detect.DetectedFace.retried`; a less certain face).
    """

    box: tuple[float, float, float, float]
    score: float | None
    expression: str
    probabilities: dict[str, float]
    pose: str | None = None
    yaw: float | None = None
    pitch: float | None = None
    pose_probabilities: dict[str, float] | None = None
    scale_weights: list[float] | None = None
    landmarks: np.ndarray | None = None
    matrix: np.ndarray | None = field(default=None, repr=False)
    attention: np.ndarray | None = field(default=None, repr=False)
    crop: np.ndarray | None = field(default=None, repr=False)
    realigned: bool = False
    retried: bool = False

    def to_json(self) -> dict:
        """The face's entry in a ``phanet predict`` record."""
        return {
            "box": [round(float(v), 2) for v in self.box],
            "score": None if self.score is None else round(float(self.score), 6),
            "expression": self.expression,
            "probabilities": self.probabilities,
            "pose": self.pose,
            "yaw": self.yaw,
            "pose_probabilities": self.pose_probabilities,
            "scale_weights": self.scale_weights,
            "realigned": self.realigned,
            "retried": self.retried,
        }


@dataclass
class LocatedFace:
    """A face found and aligned, before classification: box, score, landmarks, crop, matrix."""

    box: tuple[float, float, float, float]
    score: float | None
    landmarks: np.ndarray | None
    crop: np.ndarray
    matrix: np.ndarray
    realigned: bool = False
    retried: bool = False


@dataclass
class ItemResult:
    """The outcome for one :class:`InputItem`: status ``ok`` / ``no_face`` / ``error``."""

    item: InputItem
    faces: list[FacePrediction]
    error: str | None = None

    @property
    def status(self) -> str:
        if self.error is not None:
            return "error"
        return "ok" if self.faces else "no_face"


class Predictor:
    """Detector + alignment + model, configured from a checkpoint.

    model: a registry model in eval mode (``PhaNetOutput`` forward).
    meta: the checkpoint's JSON (label_space, input_size, mean, std; optional ``crop``, the face-crop
        contract of its training images, see :mod:`phanet.crop`).
    detector: a :class:`FaceDetector`, or None when inputs are face crops already.
    batch_size: faces per model call.
    align_padding: crop padding around the landmark template (see :mod:`phanet.inference.align`);
        default: the checkpoint's (``crop.padding``), else 0.1.
    tta: test-time augmentation, ``"none"`` or ``"flip"`` (the answer averaged over each face and its
        mirror image, twice the compute; :mod:`phanet.inference.tta`).
    class_prior: None (default), or a deployment class prior that reweights the expression answers
        (:mod:`phanet.inference.prior`: a preset name, ``NAME=SHARE,...`` or shares in the model's class order).
    realign: cut turned faces again with the checkpoint's profile correction, where its JSON has one
        (:mod:`phanet.inference.realign`; default True). ``realignment`` holds the table in use, or None.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        meta: dict,
        detector: FaceDetector | None = None,
        device: str | torch.device = "cpu",
        batch_size: int = 32,
        align_padding: float | None = None,
        tta: str | None = None,
        class_prior: str | np.ndarray | None = None,
        realign: bool = True,
    ):
        from phanet.inference.prior import with_class_prior
        from phanet.inference.tta import with_tta

        self.tta = tta or "none"
        self.model = with_class_prior(with_tta(model, self.tta), class_prior).to(device).eval()
        self.meta = meta
        self.detector = detector
        self.device = torch.device(device)
        self.batch_size = int(batch_size)
        self.label_space = LabelSpace.from_json(meta["label_space"])
        self.data_config = ModelDataConfig.from_meta(meta)
        self.input_size = self.data_config.input_size
        if align_padding is None:
            align_padding = padding_from_meta(meta)
        self.align_padding = float(align_padding)
        self.align_fit = fit_from_meta(meta)  # the crops must be fitted as the training crops were
        self.num_scales = model.num_scales
        self.adaptation: dict | None = None  # set by adapt_batch_norm
        self.prior_estimate: dict | None = None  # set by estimate_class_prior
        self.realignment = self._realignment(meta, detector) if realign else None

    @classmethod
    def from_checkpoint(
        cls,
        path: str | Path | None = None,
        device: str | torch.device | None = None,
        detector: str | FaceDetector | None = "mtcnn",
        batch_size: int = 32,
        align_padding: float | None = None,
        tta: str | None = None,
        class_prior: str | np.ndarray | None = None,
        realign: bool = True,
        **detector_kwargs,
    ) -> Predictor:
        """A predictor from a checkpoint; ``detector`` is a registered name, an instance, or None.

        ``path=None`` uses the model bundled with the package (:func:`phanet.checkpoint.bundled_checkpoint`).

        ``detector_kwargs`` (e.g. ``min_score``, ``max_side``) go to :func:`create_detector`.
        """
        from phanet.checkpoint import bundled_checkpoint, load_checkpoint

        path = bundled_checkpoint() if path is None else path
        device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        model, meta = load_checkpoint(path, device=device)
        if isinstance(detector, str):
            detector = create_detector(detector, device=device, **detector_kwargs)
        return cls(model, meta, detector, device, batch_size=batch_size, align_padding=align_padding, tta=tta,
                   class_prior=class_prior, realign=realign)

    @property
    def class_prior(self) -> dict[str, float] | None:
        """The class prior the expression answers are reweighted by, as ``{class: share}``; None when off."""
        log_prior = getattr(self.model, "log_prior", None)
        if log_prior is None:
            return None
        return dict(zip(self.label_space.expressions, log_prior.exp().tolist()))

    # --- public API -------------------------------------------------------------------------------

    def predict(self, image, return_attention: bool = False) -> list[FacePrediction]:
        """Faces in one image (path, PIL image or ``[H, W, 3]`` array); empty list when none."""
        return self.predict_batch([image], return_attention=return_attention)[0]

    def predict_batch(self, images: Sequence, return_attention: bool = False) -> list[list[FacePrediction]]:
        """:meth:`predict` for several images, with their faces classified together."""
        arrays = [to_rgb_array(image) for image in images]
        located = self.locate_faces(arrays)
        crops = [face.crop for faces in located for face in faces]
        outputs = self.classify(np.stack(crops) if crops else None, return_attention)
        if self.realignment is not None and "pose" in outputs:
            self.realign_faces(arrays, located, outputs, return_attention)
        results, k = [], 0
        for faces in located:
            predictions = []
            for face in faces:
                predictions.append(self._face_prediction(face, outputs, k, return_attention))
                k += 1
            results.append(predictions)
        return results

    def predict_items(
        self, items: Iterable[InputItem], images_per_step: int = 16, return_attention: bool = False
    ) -> Iterator[ItemResult]:
        """Results for a stream of items, in order; failures become error results.

        Items are grouped ``images_per_step`` at a time (fewer when they are huge: at most
        ``MAX_PENDING_PIXELS`` decoded pixels are held) so that faces from several images share a
        model call; if a group fails, its images are retried one by one to isolate the culprit.
        """
        pending: list[InputItem] = []
        pixels = 0
        for item in items:
            if item.error is not None:
                yield from self._flush(pending, return_attention)
                pending, pixels = [], 0
                yield ItemResult(item, [], item.error)
                continue
            pending.append(item)
            pixels += item.image.shape[0] * item.image.shape[1]
            if len(pending) >= images_per_step or pixels >= MAX_PENDING_PIXELS:
                yield from self._flush(pending, return_attention)
                pending, pixels = [], 0
        yield from self._flush(pending, return_attention)

    def adapt_batch_norm(self, items: Iterable[InputItem], prior: float | None = None,
                         max_faces: int | None = None, depth: float = 1.0) -> dict:
        """Test-time batch-norm adaptation (:mod:`phanet.inference.adapt_bn`) to the faces of ``items``.

        The faces are found and aligned as for prediction and only their crops are kept (never the
        decoded images); at most ``max_faces`` of them, evenly spaced, adapt the model in one forward
        pass; ``depth``: the share of batch-norm layers adapted, from the input. Items that fail to
        decode or detect are skipped. Every later prediction of this predictor
        uses the adapted statistics. Returns :func:`~phanet.inference.adapt_bn.adapt_batch_norm`'s dict
        with ``inputs`` and ``faces_found`` added;
        raises ValueError when no face is found.
        """
        from phanet.inference.adapt_bn import DEFAULT_MAX_IMAGES, DEFAULT_PRIOR, adapt_batch_norm

        prior = DEFAULT_PRIOR if prior is None else prior
        max_faces = DEFAULT_MAX_IMAGES if max_faces is None else max_faces
        crops: list[np.ndarray] = []
        inputs = 0
        for item in items:
            inputs += 1
            if item.error is not None:
                continue
            try:
                crops.extend(face.crop for face in self.locate_faces([item.image])[0])
            except Exception:  # as in prediction, one bad input is skipped, not fatal
                log.debug("batch-norm adaptation: skipping %s", item.file, exc_info=True)
        if not crops:
            raise ValueError(f"batch-norm adaptation: no face found in the {inputs} inputs sampled")
        images = self._model_input(np.stack([crops[i] for i in evenly_spaced(len(crops), max_faces)]))
        info = adapt_batch_norm(self.model, images, prior, depth)
        info.update(inputs=inputs, faces_found=len(crops))
        self.adaptation = info
        return info

    def estimate_class_prior(self, items: Iterable[InputItem], pseudo_count: float | None = None) -> dict:
        """Estimate how often each expression occurs among the faces of ``items`` (unlabelled) and reweight
        every later answer of this predictor by it (:func:`phanet.inference.prior.estimate_prior`, EM of
        Saerens et al. 2002, on the answers this predictor gives them now: after any batch-norm adaptation).

        Items that fail to decode or detect are skipped. Returns ``inputs``, ``faces``, ``prior``
        (``{class: share}``), ``iterations`` and ``converged``; raises ValueError when a class prior is already
        set or no face is found.
        """
        from phanet.inference.prior import ESTIMATE_PSEUDO_COUNT, PriorAdjusted, estimate_prior

        if self.class_prior is not None:
            raise ValueError("this predictor already reweights its answers by a class prior; estimate one instead "
                             "of giving one, not both")
        pseudo_count = ESTIMATE_PSEUDO_COUNT if pseudo_count is None else pseudo_count
        rows: list[list[float]] = []
        inputs = 0
        for result in self.predict_items(items, images_per_step=self.batch_size):
            inputs += 1
            rows.extend([face.probabilities[name] for name in self.label_space.expressions] for face in result.faces)
        if not rows:
            raise ValueError(f"class prior estimation: no face found in the {inputs} inputs sampled")
        estimate = estimate_prior(np.array(rows), pseudo_count)
        self.model = PriorAdjusted(self.model, estimate.shares).to(self.device).eval()
        info = {"inputs": inputs, "faces": estimate.faces, "pseudo_count": float(pseudo_count),
                "prior": self.class_prior, "iterations": estimate.iterations, "converged": estimate.converged}
        self.prior_estimate = info
        return info

    # --- stages -----------------------------------------------------------------------------------

    def locate_faces(self, images: Sequence[np.ndarray]) -> list[list[LocatedFace]]:
        """Per image, the faces found, each with its aligned crop."""
        if self.detector is None:
            return [[self._whole_image(image)] for image in images]
        located = []
        for image, faces in zip(images, self.detector.detect_batch(images)):
            located.append([self._aligned(image, face) for face in faces])
        return located

    @torch.inference_mode()
    def classify(self, crops: np.ndarray | None, return_attention: bool = False) -> dict[str, np.ndarray]:
        """Run the model on ``crops [N, S, S, 3]`` uint8 in batches of ``batch_size``.

        Returns arrays with a leading N: ``expression`` ``[N, E]`` and, where the model has them,
        ``pose`` ``[N, P]`` (probabilities), ``scale_weights`` ``[N, S]``, ``attention`` ``[N, S, S]``.
        """
        if crops is None or len(crops) == 0:
            return {}
        parts: dict[str, list[np.ndarray]] = {}
        for start in range(0, len(crops), self.batch_size):
            out = self.model(self._model_input(crops[start : start + self.batch_size]),
                             return_attention=return_attention)
            parts.setdefault("expression", []).append(out.expression_logits.softmax(-1).float().cpu().numpy())
            if out.pose_logits is not None:
                parts.setdefault("pose", []).append(out.pose_logits.softmax(-1).float().cpu().numpy())
            if out.scale_weights is not None:
                parts.setdefault("scale_weights", []).append(out.scale_weights.float().cpu().numpy())
            if return_attention and out.attention_maps is not None:
                attention = fuse_attention(out.attention_maps, out.scale_weights, self.input_size)
                parts.setdefault("attention", []).append(attention.cpu().numpy())
        return {name: np.concatenate(arrays) for name, arrays in parts.items()}

    # --- helpers ----------------------------------------------------------------------------------

    def _model_input(self, crops: np.ndarray) -> torch.Tensor:
        """``[N, S, S, 3]`` uint8 crops -> the model's normalised ``[N, 3, S, S]`` float input."""
        batch = torch.from_numpy(np.ascontiguousarray(crops))
        x = batch.to(self.device).permute(0, 3, 1, 2).float().div_(255.0)
        return normalise(x, self.data_config.mean, self.data_config.std)

    def realign_faces(self, images: Sequence[np.ndarray], located: list[list[LocatedFace]], outputs: dict,
                      return_attention: bool = False) -> int:
        """Cut again, with the checkpoint's correction for their answered pose bin, the faces whose first
        answer is a turned pose (:mod:`phanet.inference.realign`), and replace their answers in ``outputs``
        (:meth:`classify`'s, for the faces of ``located`` in order) by those on the new crops. Returns how
        many faces were cut again."""
        from phanet.inference.realign import homogeneous

        poses = self.label_space.poses
        redo: list[tuple[int, LocatedFace]] = []
        k = 0
        for image, faces in zip(images, located):
            for face in faces:
                pose = poses[int(outputs["pose"][k].argmax())].name
                correction = self.realignment.matrix(pose, self.input_size)
                if correction is not None and face.landmarks is not None:  # never a --no-detect whole image
                    face.matrix = (correction @ homogeneous(face.matrix))[:2]
                    face.crop = warp_to_crop(image, face.matrix, self.input_size)
                    face.realigned = True
                    redo.append((k, face))
                k += 1
        if redo:
            again = self.classify(np.stack([face.crop for _, face in redo]), return_attention)
            for j, (k, _) in enumerate(redo):
                for name, values in again.items():
                    outputs[name][k] = values[j]
        return len(redo)

    @staticmethod
    def _realignment(meta: dict, detector: FaceDetector | None):
        """The checkpoint's profile correction if it was measured for this detector, else None."""
        from phanet.inference.realign import Realignment

        table = Realignment.from_meta(meta)
        if table is None or detector is None:
            return None
        name = getattr(detector, "registered_name", type(detector).__name__)
        if table.detector != name:
            log.warning("profile re-alignment off: the checkpoint's table was measured for the %s detector, "
                        "not for %s", table.detector, name)
            return None
        return table

    def _aligned(self, image: np.ndarray, face: DetectedFace) -> LocatedFace:
        crop, matrix = align_face(image, self.input_size, face.landmarks, face.box, self.align_padding, self.align_fit)
        return LocatedFace(tuple(float(v) for v in face.box), face.score, face.landmarks, crop, matrix,
                           retried=face.retried)

    def _whole_image(self, image: np.ndarray) -> LocatedFace:
        """``--no-detect``: the whole image is the face, resized (not cropped) to the model's input."""
        from PIL import Image

        h, w = image.shape[:2]
        size = self.input_size
        crop = np.asarray(Image.fromarray(image).resize((size, size), Image.Resampling.BILINEAR, reducing_gap=2.0))
        matrix = np.array([[size / w, 0.0, 0.0], [0.0, size / h, 0.0]])
        return LocatedFace((0.0, 0.0, float(w), float(h)), None, None, crop, matrix)

    def _face_prediction(self, face: LocatedFace, outputs: dict, k: int, return_attention: bool) -> FacePrediction:
        names = self.label_space.expressions
        probs = outputs["expression"][k]
        prediction = FacePrediction(
            box=face.box,
            score=face.score,
            expression=names[int(probs.argmax())],
            probabilities={name: round(float(p), 6) for name, p in zip(names, probs)},
            landmarks=face.landmarks,
            matrix=face.matrix,
            realigned=face.realigned,
            retried=face.retried,
        )
        if "pose" in outputs:
            pose_probs = outputs["pose"][k]
            pose = self.label_space.poses[int(pose_probs.argmax())]
            prediction.pose, prediction.yaw, prediction.pitch = pose.name, pose.yaw, pose.pitch
            prediction.pose_probabilities = {
                p.name: round(float(v), 6) for p, v in zip(self.label_space.poses, pose_probs)
            }
        if "scale_weights" in outputs:
            prediction.scale_weights = [round(float(v), 6) for v in outputs["scale_weights"][k]]
        if return_attention:
            prediction.crop = face.crop
            prediction.attention = outputs["attention"][k] if "attention" in outputs else None
        return prediction

    def _flush(self, items: list[InputItem], return_attention: bool) -> Iterator[ItemResult]:
        if not items:
            return
        try:
            batches = self.predict_batch([item.image for item in items], return_attention)
        except Exception as err:  # isolate the failing image instead of losing the whole group
            if len(items) == 1:
                log.debug("prediction failed on %s", items[0].file, exc_info=True)
                yield ItemResult(items[0], [], f"prediction failed: {type(err).__name__}: {err}")
                return
            for item in items:
                yield from self._flush([item], return_attention)
            return
        for item, faces in zip(items, batches):
            yield ItemResult(item, faces)


def fuse_attention(
    maps: Sequence[torch.Tensor], scale_weights: torch.Tensor | None, size: int
) -> torch.Tensor:
    """One ``[B, size, size]`` map in [0, 1] from S attention maps ``[B, 1, h_s, w_s]``.

    Each map is upsampled to the crop, min-max normalised per face (sigmoid and softmax maps then
    share a range), and the maps are averaged with the pose-adaptive weights ``beta [B, S]`` (uniform
    when None), so the overlay shows where the scales the model relied on were looking.
    """
    upsampled = []
    for attention in maps:
        a = F.interpolate(attention.float(), size=(size, size), mode="bilinear", align_corners=False)[:, 0]
        low = a.amin(dim=(1, 2), keepdim=True)
        high = a.amax(dim=(1, 2), keepdim=True)
        upsampled.append((a - low) / (high - low).clamp_min(1e-8))
    stacked = torch.stack(upsampled, dim=1)  # [B, S, size, size]
    if scale_weights is None:
        return stacked.mean(dim=1)
    return (stacked * scale_weights.float()[:, :, None, None]).sum(dim=1)
