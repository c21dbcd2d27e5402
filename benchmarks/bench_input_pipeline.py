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
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from affect_tf import data  # noqa: E402
from affect_tf.proposals.cache import ProposalArrays  # noqa: E402
from affect_tf.testing import read_jpeg_records, write_jpeg_records  # noqa: E402

TARGET_RATIO = 0.8


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
        names = write_jpeg_records(path, args.images, height, width)
        m = 50
        proposals = ProposalArrays(
            np.asarray(names), np.random.default_rng(1).random((len(names), m, 4), np.float32),
            np.random.default_rng(2).random((len(names), m), np.float32),
            np.full(len(names), m, np.int32))

        def raw():
            return read_jpeg_records(path).repeat().map(
                lambda ex: data.decode_image_tensor(ex["image"]),
                num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)

        def training():
            return data.training_pipeline(read_jpeg_records(path), image_size=224, resize_size=256,
                                          batch_size=args.batch_size, seed=0)

        def evaluation():
            return data.evaluation_pipeline(read_jpeg_records(path).repeat(), resize_size=256,
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
