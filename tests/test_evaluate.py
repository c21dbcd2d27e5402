"""affect_tf.evaluate and affect_tf.views: the whole-image view, and what the report's figure is
given."""

import numpy as np
import tensorflow as tf

from affect_tf import evaluate as evaluate_lib
from affect_tf import views
from affect_tf.config import RegionConfig
from affect_tf.testing import tiny_config


class MeanColour:
    """A stand-in classifier: logits from the mean of the red and blue channels (deterministic)."""

    def __call__(self, images, training=False):
        mean = tf.reduce_mean(tf.cast(images, tf.float32), axis=[1, 2]) / 255.0
        return tf.stack([mean[:, 2] * 4.0, mean[:, 0] * 4.0], axis=-1)


def test_every_user_of_the_whole_image_takes_the_same_view():
    images = tf.random.stateless_uniform([3, 64, 64, 3], seed=[1, 2], maxval=255.0)
    config = tiny_config("/tmp/unused")
    through_evaluate = evaluate_lib.global_view_probs(MeanColour(), images, config)
    through_views = views.whole_image_probs(MeanColour(), images, **views.view_settings(config))
    np.testing.assert_array_equal(through_evaluate.numpy(), through_views.numpy())
    ten = views.whole_image_views(images, image_size=32, resize_size=40, ten_crop=True)
    assert ten.shape == (10, 3, 32, 32, 3)
    # The tenth view is the mirrored centre crop of the first view's resize.
    one = views.whole_image_views(images, image_size=32, resize_size=40, ten_crop=False)
    np.testing.assert_array_equal(ten[4].numpy(), one[0].numpy())
    np.testing.assert_array_equal(ten[9].numpy(), one[0].numpy()[:, :, ::-1])


def _predictions(labels):
    count, m = len(labels), 3
    boxes = np.tile(np.asarray([[0.0, 0.0, 0.5, 0.5], [0.5, 0.5, 1.0, 1.0], [0, 0, 1, 1]],
                               np.float32), (count, 1, 1))
    candidate_probs = np.tile(np.asarray([[0.9, 0.1], [0.2, 0.8], [0.5, 0.5]], np.float32),
                              (count, 1, 1))
    return {"label": np.asarray(labels), "filename": np.asarray([f"{i}.png" for i in range(count)]),
            "global_probs": np.tile(np.asarray([0.4, 0.6], np.float32), (count, 1)),
            "candidate_probs": candidate_probs, "boxes": boxes,
            "objectness": np.tile(np.asarray([0.1, 0.2, 0.9], np.float32), (count, 1)),
            "num_valid": np.full(count, m, np.int32)}


def test_the_figure_shows_half_positive_half_negative_with_each_selections_box():
    test = _predictions([0, 0, 0, 1, 1, 0, 1, 1, 1, 1, 0])
    choice = evaluate_lib.figure_choice(test, RegionConfig(top_k=2), count=4)
    assert choice["label"].tolist() == [1, 1, 0, 0]
    assert choice["filename"].tolist() == ["3.png", "4.png", "0.png", "1.png"]
    assert {key for key in choice if key.startswith("boxes_")} == {
        "boxes_ar", "boxes_obj", "boxes_senti"}
    # Objectness ranks the whole-image box first; sentiment the most confident region.
    np.testing.assert_array_equal(choice["boxes_obj"][0], [0, 0, 1, 1])
    np.testing.assert_array_equal(choice["boxes_senti"][0], [0, 0, 0.5, 0.5])
    empty = evaluate_lib.figure_choice(_predictions([]), RegionConfig(top_k=2))
    assert empty["label"].size == 0
