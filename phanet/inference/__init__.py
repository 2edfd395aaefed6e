"""Inference on photos and video: face detection, alignment, batched PhaNet, outputs.

``Predictor.from_checkpoint(path).predict(image)`` is the entry point; ``phanet predict`` wraps it.
Detection and video decoding need the ``detect`` extra (facenet-pytorch==2.5.3, OpenCV); they are
imported only when used.
"""

from phanet.inference.align import align_face, estimate_similarity, template_points
from phanet.inference.detect import (
    DetectedFace,
    FaceDetector,
    MTCNNDetector,
    create_detector,
    list_detectors,
    register_detector,
)
from phanet.inference.predictor import FacePrediction, ItemResult, Predictor
from phanet.inference.sources import InputItem, iter_inputs, to_rgb_array

__all__ = [
    "DetectedFace",
    "FaceDetector",
    "FacePrediction",
    "InputItem",
    "ItemResult",
    "MTCNNDetector",
    "Predictor",
    "align_face",
    "create_detector",
    "estimate_similarity",
    "iter_inputs",
    "list_detectors",
    "register_detector",
    "template_points",
    "to_rgb_array",
]
