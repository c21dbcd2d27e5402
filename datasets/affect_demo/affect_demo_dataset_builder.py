"""The embedded demo: generated scenes whose sentiment is carried by one small object.

Each 256 x 256 scene holds neutral clutter (shapes drawn from one palette shared by both classes,
plus label-independent look-alikes and decoys) and one small object covering 2-5 % of the image:
warm, bright and rounded for ``positive``; dark, cool and angular for ``negative``. The object's
tight box is stored as ``object_box``, so a run can measure how often its affective regions find
it. Everything is generated from a fixed seed by :mod:`affect_tf.demo_scenes`: no download.

Configs: ``default`` (1,200 scenes) and ``tiny`` (48 scenes, for tests). One ``train`` split holds
everything; ``affect_tf.data`` derives the 80 / 5 / 15 protocol split from it.
"""

from __future__ import annotations

import dataclasses

from etils import epath
import tensorflow_datasets as tfds

from affect_tf import builder_utils
from affect_tf import demo_scenes

# Fixed, documented seed of the generator: the demo is the same on every machine.
DEMO_SEED = 20180917


@dataclasses.dataclass
class DemoConfig(tfds.core.BuilderConfig):
    """How many scenes, their size and the generator seed."""

    num_images: int = 1200
    image_size: int = 256
    seed: int = DEMO_SEED


class Builder(tfds.core.GeneratorBasedBuilder):
    """Generated scenes with one small sentiment-bearing object and its ground-truth box."""

    # TFDS infers README.md / CITATIONS.bib from the module path, which exists only when the
    # package is installed; the module's own folder is right in a checkout too.
    pkg_dir_path = epath.Path(__file__).parent
    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    BUILDER_CONFIGS = [
        DemoConfig(name="default", description="1,200 scenes of 256 x 256 px.", num_images=1200),
        DemoConfig(name="tiny", description="48 scenes of 256 x 256 px, for tests.", num_images=48),
    ]
    DEFAULT_BUILDER_CONFIG_NAME = "default"

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            features=builder_utils.common_features(
                # Generated scenes are stored losslessly, not as JPEG.
                image=tfds.features.Image(shape=(None, None, 3), encoding_format="png"),
                object_box=tfds.features.BBoxFeature(
                    doc="Tight box of the sentiment-bearing object, normalized [y1, x1, y2, x2]."),
            ),
            supervised_keys=("image", "label"),
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        del dl_manager  # Generated: nothing to download.
        return {"train": self._generate_examples()}

    def _generate_examples(self):
        config = self.builder_config
        for index, image, label, box in demo_scenes.generate_scenes(
                config.seed, config.num_images, config.image_size):
            name = f"scene_{index:05d}.png"
            yield name, {
                "image": image,
                "label": label,
                "image/filename": name,
                "object_box": tfds.features.BBox(*(float(v) for v in box)),
            }
