"""OpenCV and faiss, imported on first use so importing provenance stays cheap."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import types


@functools.cache
def load_cv2() -> types.ModuleType:
    """OpenCV, on one thread."""
    import cv2  # heavy: imported on first use only

    cv2.setNumThreads(1)  # verify and batches parallelise by process (decision 9)
    return cv2


@functools.cache
def load_faiss() -> types.ModuleType:
    """faiss, on one OpenMP thread."""
    import faiss  # heavy: imported on first use only

    faiss.omp_set_num_threads(1)
    return faiss
