"""Input pipeline throughput against the raw decode limit on the same files.

    .venv/bin/python benchmarks/bench_input_pipeline.py [--images 400] [--size 500x375]

Writes ``--images`` JPEG photos (synthetic, photo-like: smooth gradients, noise, shapes) to a
TFRecord file, then measures images per second of
  * raw decode: read the records, parse, ``tf.io.decode_image`` (AUTOTUNE parallel), nothing else;
  * the training pipeline (decode, resize 256, random crop 224, flip, shuffle, batch, prefetch);
  * the evaluation pipeline (decode, resize 256, batch) with a proposal cache joined by filename.
Target (issue 3): each pipeline >= 0.8 x the raw decode rate.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from affect_tf import data  # noqa: E402
from affect_tf.io import encode_jpeg  # noqa: E402
from affect_tf.proposals.cache import ProposalArrays  # noqa: E402
from affect_tf.testing import synthetic_photo  # noqa: E402

TARGET_RATIO = 0.8


def write_records(path: str, count: int, height: int, width: int) -> list[str]:
    rng = np.random.default_rng(0)
    names = []
    with tf.io.TFRecordWriter(path) as writer:
        for index in range(count):
            name = f"img_{index:05d}.jpg"
            names.append(name)
            feature = {
                "image": tf.train.Feature(bytes_list=tf.train.BytesList(
                    value=[encode_jpeg(synthetic_photo(rng, height, width), quality=90)])),
                "image/filename": tf.train.Feature(bytes_list=tf.train.BytesList(
                    value=[name.encode()])),
                "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[index % 2])),
            }
            writer.write(tf.train.Example(features=tf.train.Features(
                feature=feature)).SerializeToString())
    return names


def examples(path: str) -> tf.data.Dataset:
    spec = {"image": tf.io.FixedLenFeature([], tf.string),
            "image/filename": tf.io.FixedLenFeature([], tf.string),
            "label": tf.io.FixedLenFeature([], tf.int64)}
    return tf.data.TFRecordDataset(path).map(
        lambda record: tf.io.parse_single_example(record, spec),
        num_parallel_calls=tf.data.AUTOTUNE)


def rate(dataset: tf.data.Dataset, images_per_element: int, elements: int) -> float:
    iterator = iter(dataset)
    next(iterator)  # Warm-up: tracing and the first prefetch are not throughput.
    start = time.perf_counter()
    for _ in range(elements):
        next(iterator)
    return elements * images_per_element / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=400)
    parser.add_argument("--size", default="500x375", help="WIDTHxHEIGHT of the JPEGs")
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3, help="best of this many passes")
    args = parser.parse_args()
    width, height = map(int, args.size.split("x"))
    batches = args.images // args.batch_size - 1
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "images.tfrecord")
        names = write_records(path, args.images, height, width)
        m = 50
        proposals = ProposalArrays(
            np.asarray(names), np.random.default_rng(1).random((len(names), m, 4), np.float32),
            np.random.default_rng(2).random((len(names), m), np.float32),
            np.full(len(names), m, np.int32))

        def raw():
            return examples(path).repeat().map(
                lambda ex: data.decode_image_tensor(ex["image"]),
                num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)

        def training():
            return data.training_pipeline(examples(path), image_size=224, resize_size=256,
                                          batch_size=args.batch_size, seed=0)

        def evaluation():
            return data.evaluation_pipeline(examples(path).repeat(), resize_size=256,
                                            batch_size=args.batch_size, proposals=proposals)

        results = {
            "raw decode": max(rate(raw(), 1, batches * args.batch_size) for _ in range(args.repeats)),
            "training pipeline": max(rate(training(), args.batch_size, batches)
                                     for _ in range(args.repeats)),
            "evaluation pipeline": max(rate(evaluation(), args.batch_size, batches)
                                       for _ in range(args.repeats)),
        }
    print(f"{args.images} JPEGs {width}x{height}, batch {args.batch_size}, "
          f"{os.cpu_count()} CPU cores, best of {args.repeats}")
    for name, value in results.items():
        ratio = value / results["raw decode"]
        verdict = "" if name == "raw decode" else (
            f"  ratio {ratio:.2f} (target >= {TARGET_RATIO}): "
            f"{'MET' if ratio >= TARGET_RATIO else 'MISSED'}")
        print(f"{name:22s} {value:8.1f} images/s{verdict}")


if __name__ == "__main__":
    main()
