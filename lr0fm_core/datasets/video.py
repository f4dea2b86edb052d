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
            count = sum(1 for _ in container.decode(video=0))
        with av.open(os.fspath(path)) as container:
            for index, frame in enumerate(container.decode(video=0)):
                if index == count // 2:
                    return frame.to_image().convert("RGB")
    except Exception as exc:  # PyAV raises its own error types for every container/codec problem
        raise DatasetError(f"cannot read video {Path(path)}: {exc}") from exc
    raise DatasetError(f"video {Path(path)} has no frames")
