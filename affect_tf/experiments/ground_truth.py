"""The ground truth of region quality (Section 4.6): EmotionROI's stimuli maps, or the demo's face.

Both sources give the same kind of map, which :func:`affect_tf.experiments.region_quality.
top1_region_quality` scores the same way: uint8 [H, W], grey levels 0..255, the size of the image
the boxes are normalized to (normalized [y1, x1, y2, x2] in [0, 1]).

* :data:`STIMULI_MAPS`: a dataset's stored ``stimuli_map`` feature. EmotionROI's: how strongly
  its annotators' boxes mark each pixel as evoking the emotion. The builder stores it as a
  1-channel JPEG or PNG of its image's size (resizing one that is not); :func:`aligned_map`
  decodes one and refuses a map whose size is not its image's, since a box normalized to the
  image would land on the wrong pixels of it.
* :data:`FACE_MAPS`: the demo (``affect_demo``) stores no map, only the tight box of its
  sentiment-bearing face (``object_box``, on pixel edges). The scenes draw that face as a filled
  disc or slight ellipse (aspect 0.85-1) with a ring of 2-3 pixels around it, and the box is the
  tight box of those pixels; :func:`face_map` draws the filled ellipse inscribed in the box, which
  is the drawn face to within about its edge's pixels (tested against the scenes' own masks). It
  is computed from the predictions' ``object_box``, so the demo's stored features (and every
  cached build of it) stay as they are.

NumPy and PIL only: the stage reads the encoded bytes (:func:`affect_tf.stages.experiments_stage`).
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from affect_tf import errors
from affect_tf.experiments import region_quality

# The kinds of ground truth, as ``summary.json``'s ``region_quality.ground_truth_kind`` names them.
STIMULI_MAPS = "stimuli_map"
FACE_MAPS = "face_map"
# What the report's region-quality heading says the top-1 region was scored against.
DESCRIPTIONS = {
    STIMULI_MAPS: "the dataset's stimuli maps (EmotionROI's `stimuli_map`)",
    FACE_MAPS: "the demo's face drawn as a stimuli map (the ellipse inscribed in `object_box`)",
}
# The PIL mode of an 8-bit, 1-channel image: what the builder stores.
_GREY_MODE = "L"


def _opened(data: bytes, name: str, what: str) -> Image.Image:
    """``data`` opened by PIL (header read, pixels not yet decoded), or DataError naming it."""
    try:
        return Image.open(io.BytesIO(bytes(data)))
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
        raise errors.DataError(
            f"{name}: its {what} does not decode as an image ({len(data)} bytes; {error}). "
            "Rebuild the dataset (the builder stores only images that decode).") from error


def encoded_image_size(data: bytes, name: str) -> tuple[int, int]:
    """``(height, width)`` of an encoded image, from its header (the pixels are not decoded).

    This is the size the proposal stage decodes (:func:`affect_tf.io.decode_image_bytes` applies
    no EXIF rotation), so the size the predictions' normalized boxes refer to.

    Raises:
        errors.DataError: the bytes are not an image (``name`` said).
    """
    with _opened(data, name, "image") as image:
        width, height = image.size
    return int(height), int(width)


def decode_map(data: bytes, name: str) -> np.ndarray:
    """A stored stimuli map (1-channel 8-bit PNG or JPEG) as uint8 [H, W].

    Raises:
        errors.DataError: the bytes do not decode, or hold another kind of image (RGB, 16-bit:
            not what the builder stores); ``name`` and the mode received are said.
    """
    with _opened(data, name, "stimuli map") as image:
        if image.mode != _GREY_MODE:
            raise errors.DataError(
                f"{name}: its stimuli map must be a 1-channel 8-bit image (PIL mode "
                f"{_GREY_MODE!r}). Received: mode {image.mode!r}, {image.size[0]} x "
                f"{image.size[1]} (width x height). Rebuild the dataset (the builder stores "
                "grey maps).")
        try:
            return np.array(image, dtype=np.uint8)
        except (OSError, ValueError) as error:  # A header that reads, pixels that do not.
            raise errors.DataError(f"{name}: its stimuli map does not decode ({error}).") from error


def aligned_map(map_data: bytes, image_size: tuple[int, int], name: str) -> np.ndarray:
    """A stored stimuli map, decoded and checked to be its image's size.

    Args:
        map_data: the map's encoded bytes (the ``stimuli_map`` feature, undecoded).
        image_size: ``(height, width)`` of its image (:func:`encoded_image_size`).
        name: the image's ``image/filename``, for messages.

    Returns:
        uint8 [height, width], grey levels 0..255.

    Raises:
        errors.DataError: the map does not decode, is not 1-channel 8-bit, or its size is not
            the image's (both sizes said).
    """
    stimuli_map = decode_map(map_data, name)
    height, width = (int(side) for side in image_size)
    if stimuli_map.shape != (height, width):
        raise errors.DataError(
            f"{name}: its stimuli map is {stimuli_map.shape[0]} x {stimuli_map.shape[1]} pixels "
            f"(height x width) but the image is {height} x {width}. The boxes are normalized "
            "to the image, so the map must be its size; rebuild the dataset (the EmotionROI "
            "builder resizes a map to its image).")
    return stimuli_map


def face_map(object_box, height: int, width: int) -> np.ndarray:
    """The demo's sentiment-bearing face as a stimuli map: 255 on the face, 0 elsewhere.

    The face is drawn as a filled disc or slight ellipse (its ring included) whose tight box is
    ``object_box``, so the map is the filled ellipse inscribed in that box
    (:func:`affect_tf.experiments.region_quality.ellipse_map`): binary, so every threshold below
    1 gives the same ground truth, the face's pixels. The face's own box scores precision about
    pi / 4 (0.79) and recall 1 against it.

    Args:
        object_box: normalized [y1, x1, y2, x2] in [0, 1], the face's tight box.
        height: rows of the image the box is normalized to (the demo's scenes: 256).
        width: its columns.

    Returns:
        uint8 [height, width], 0 or 255.

    Raises:
        ValueError: a bad box or size.
    """
    return region_quality.ellipse_map(object_box, height, width)
