"""Protocol splits: holdout 80/5/15, official splits and folds, stratified k-fold."""

import dataclasses

import numpy as np
import pytest
import tensorflow_datasets as tfds

from affect_tf import data
from affect_tf.config import DataConfig


def make_index(count=200, positive_share=0.7, splits=None, folds=None, seed=0):
    rng = np.random.default_rng(seed)
    labels = (rng.random(count) < positive_share).astype(np.int64)
    return data.DatasetIndex(
        filenames=np.array([f"img_{i:04d}.jpg" for i in rng.permutation(count)], dtype=object),
        labels=labels,
        official_splits=np.array(splits if splits is not None else ["train"] * count, dtype=object),
        folds=np.array(folds if folds is not None else [-1] * count))


def label_share(index, names):
    label_of = dict(zip(index.filenames, index.labels))
    return np.mean([label_of[n] for n in names])


def assert_disjoint_and_complete(splits, index):
    train, validation, test = map(set, (splits.train, splits.validation, splits.test))
    assert not (train & validation) and not (train & test) and not (validation & test)
    assert train | validation | test == set(index.filenames)


def test_holdout_is_80_5_15_stratified_and_seeded():
    index = make_index(2000)
    splits = data.protocol_splits(index, DataConfig(), "holdout")
    assert_disjoint_and_complete(splits, index)
    assert len(splits.test) == pytest.approx(300, abs=2)
    assert len(splits.validation) == pytest.approx(100, abs=2)
    assert len(splits.train) == pytest.approx(1600, abs=3)
    overall = index.labels.mean()
    for part in (splits.train, splits.validation, splits.test):
        assert label_share(index, part) == pytest.approx(overall, abs=0.02)
    assert data.protocol_splits(index, DataConfig(), "holdout") == splits
    other = data.protocol_splits(index, DataConfig(split_seed=1), "holdout")
    assert other.test != splits.test


def test_splits_do_not_depend_on_read_order():
    index = make_index(300)
    order = np.random.default_rng(5).permutation(300)
    shuffled = data.DatasetIndex(index.filenames[order], index.labels[order],
                                 index.official_splits[order], index.folds[order])
    assert (data.protocol_splits(index, DataConfig(fold=0), "kfold")
            == data.protocol_splits(shuffled, DataConfig(fold=0), "kfold"))


def test_a_fold_protocol_needs_a_fold_and_counts_its_folds():
    index = make_index(100)
    with pytest.raises(ValueError, match="Received: fold=-1"):
        data.protocol_splits(index, DataConfig(), "kfold")  # -1 means "every fold" to stages.
    assert data.fold_count(index, DataConfig(num_folds=3), "kfold") == 3
    assert data.fold_count(index, DataConfig(), "holdout") == 1


def test_kfold_test_parts_partition_the_dataset():
    index = make_index(228, positive_share=0.6)
    tests = [set(data.protocol_splits(index, DataConfig(fold=k), "kfold").test) for k in range(5)]
    assert set().union(*tests) == set(index.filenames)
    assert sum(len(t) for t in tests) == 228
    for k, test in enumerate(tests):
        assert len(test) == pytest.approx(228 / 5, abs=2)
        assert label_share(index, test) == pytest.approx(index.labels.mean(), abs=0.05)
        splits = data.protocol_splits(index, DataConfig(fold=k, validation_fraction=0.2), "kfold")
        assert_disjoint_and_complete(splits, index)
        assert len(splits.validation) == pytest.approx(0.2 * (228 - len(test)), abs=2)


def test_official_split_keeps_test_and_carves_validation_from_train():
    splits_column = ["train"] * 140 + ["test"] * 60
    index = make_index(200, splits=splits_column)
    official_test = set(index.filenames[np.array(splits_column) == "test"])
    splits = data.protocol_splits(index, DataConfig(), "official")
    assert set(splits.test) == official_test
    assert_disjoint_and_complete(splits, index)
    assert len(splits.validation) > 0


def test_official_folds_use_the_fold_feature():
    folds = [1 + i % 5 for i in range(100)]
    index = make_index(100, folds=folds)
    splits = data.protocol_splits(index, DataConfig(fold=2), "official_folds")
    assert set(splits.test) == set(index.filenames[np.array(folds) == 3])
    assert_disjoint_and_complete(splits, index)


def test_holdout_uses_the_datasets_own_lists_when_present():
    splits_column = ["train"] * 80 + ["validation"] * 5 + ["test"] * 15
    index = make_index(100, splits=splits_column)
    splits = data.protocol_splits(index, DataConfig(), "holdout")
    assert set(splits.validation) == set(index.filenames[np.array(splits_column) == "validation"])
    assert splits.description.startswith("the dataset's own")


def test_unknown_protocol_and_bad_fold_are_rejected():
    index = make_index(50, folds=[1 + i % 5 for i in range(50)])
    with pytest.raises(ValueError, match="Received: protocol='random'"):
        data.protocol_splits(index, DataConfig(), "random")
    with pytest.raises(ValueError, match="Received: fold=7"):
        data.protocol_splits(index, dataclasses.replace(DataConfig(num_folds=10), fold=7),
                             "official_folds")


def test_max_examples_caps_each_part():
    index = make_index(300)
    splits = data.protocol_splits(index, DataConfig(max_examples=10), "holdout")
    assert len(splits.train) == len(splits.validation) == len(splits.test) == 10


with tfds.core.registered.skip_registration():  # A test-only builder stays out of the registry.

    class _OfficialSplitBuilder(tfds.core.GeneratorBasedBuilder):
        """20 tiny images, 14 in ``train`` and 6 in ``test`` (the ``official`` protocol)."""

        VERSION = tfds.core.Version("1.0.0")

        def _info(self):
            return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
                "image": tfds.features.Image(shape=(None, None, 3)),
                "label": tfds.features.ClassLabel(names=["negative", "positive"]),
                data.FILENAME_KEY: tfds.features.Text(),
            }))

        def _split_generators(self, dl_manager):
            return {"train": self._generate_examples(range(14)),
                    "test": self._generate_examples(range(14, 20))}

        def _generate_examples(self, numbers):
            for number in numbers:
                yield str(number), {"image": np.full((4, 6, 3), 10 * number, np.uint8),
                                    "label": number % 2,
                                    data.FILENAME_KEY: f"img_{number:02d}.png"}


def test_protocol_parts_of_a_built_dataset_read_back_as_examples(tmp_path):
    builder = _OfficialSplitBuilder(data_dir=str(tmp_path))
    builder.download_and_prepare()
    index = data.read_index(builder)
    assert sorted(index.filenames) == [f"img_{n:02d}.png" for n in range(20)]
    assert data.choose_protocol(builder) == "official"
    splits = data.protocol_splits(index, DataConfig(validation_fraction=0.2), "official")
    assert splits.test == tuple(f"img_{n:02d}.png" for n in range(14, 20))
    assert_disjoint_and_complete(splits, index)
    for part in splits.as_dict().values():
        read = data.examples(builder, part).as_numpy_iterator()
        assert sorted(example[data.FILENAME_KEY].decode() for example in read) == list(part)
    encoded = dict(data.encoded_images(builder))
    assert len(encoded) == 20
    image = data.decode_image_tensor(encoded["img_03.png"]).numpy()
    np.testing.assert_array_equal(image, np.full((4, 6, 3), 30, np.uint8))
