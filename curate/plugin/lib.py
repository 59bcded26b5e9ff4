"""Core hook implementations: the analyses every install has."""

from __future__ import annotations

from curate.plugin import hookimpl


@hookimpl
def klint_get_analyses():
    from curate.analysis.caption import CaptionAnalysis
    from curate.analysis.face import FaceAnalysis
    from curate.analysis.face_framing import FaceAwareFramingAnalysis
    from curate.analysis.image import ImageAnalysis
    from curate.analysis.ocr import OcrAnalysis
    from curate.analysis.pose import PoseAnalysis
    from curate.analysis.scene import SceneAnalysis

    return [ImageAnalysis(), CaptionAnalysis(), PoseAnalysis(), FaceAnalysis(), FaceAwareFramingAnalysis(),
            SceneAnalysis(), OcrAnalysis()]
