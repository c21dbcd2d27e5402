"""TFDS builders of the eight benchmark datasets and the embedded demo (``affect_tf.datasets``)."""
