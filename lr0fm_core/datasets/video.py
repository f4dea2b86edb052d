"""The middle frame of a video, as CLIP evaluated UCF101 (needs PyAV, imported on use)."""

from __future__ import annotations

import os
from pathlib import Path

from PIL import Image

from .classes import DatasetError


def middle_frame(path: str | os.PathLike) -> Image.Image:
    """Frame ``n // 2`` of the ``n`` decoded frames of the first video stream, as RGB."""
    import av  # optional: only UCF101 from videos needs it

    try:
        with av.open(os.fspath(path)) as container:
            frames = list(container.decode(video=0))  # one pass: headers' frame counts can be wrong
            if frames:
                return frames[len(frames) // 2].to_image().convert("RGB")
    except Exception as exc:  # PyAV raises its own error types for every container/codec problem
        raise DatasetError(f"cannot read video {Path(path)}: {exc}") from exc
    raise DatasetError(f"video {Path(path)} has no frames")
