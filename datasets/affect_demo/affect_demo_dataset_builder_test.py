"""TFDS test of the affect_demo builder (tiny config: 48 generated scenes, no dummy data needed)."""

from etils import epath
import numpy as np
import tensorflow_datasets as tfds

from affect_tf.datasets.affect_demo import affect_demo_dataset_builder
from affect_tf.datasets.affect_demo import scenes


class AffectDemoTinyTest(tfds.testing.DatasetBuilderTestCase):
    """Builds the tiny config and checks its split, features and examples."""

    DATASET_CLASS = affect_demo_dataset_builder.Builder
    BUILDER_CONFIG_NAMES_TO_TEST = ["tiny"]
    SPLITS = {"train": 48}
    # Nothing is downloaded, so there is no dummy_data/; the test case still wants an existing
    # folder to point the (unused) download manager at.
    EXAMPLE_DIR = epath.Path(__file__).parent
    SKIP_CHECKSUMS = True

    def test_examples_are_the_generated_scenes(self):
        builder = tfds.builder("affect_demo/tiny", data_dir=self.tmp_dir)
        builder.download_and_prepare()
        stored = {example["image/filename"].decode(): example
                  for example in tfds.as_numpy(builder.as_dataset(split="train"))}
        config = builder.builder_config
        self.assertEqual(config.seed, scenes.DATASET_SEED)
        generated = list(scenes.generate_scenes(
            config.seed, config.num_images, config.image_size))
        self.assertEqual(sorted(stored), [f"scene_{i:05d}.png" for i in range(48)])
        self.assertEqual(sum(label for _, _, label, _ in generated), 24)  # balanced
        for index, image, label, box in generated:
            example = stored[f"scene_{index:05d}.png"]
            np.testing.assert_array_equal(example["image"], image)  # PNG: lossless
            self.assertEqual(example["label"], label)
            np.testing.assert_allclose(example["object_box"], box, atol=1e-6)

