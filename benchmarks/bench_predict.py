"""Photos per second of ``affect_tf.predict`` on real photographs, beside the served signature.

On scikit-image's RGB photographs (``skimage.data``: astronaut, chelsea, coffee, rocket,
motorcycle_left ... as JPEG files, each repeated to ``--photos`` files), measures:

- the Python API (``affect_tf.predictor.Predictor``, what ``python -m affect_tf.predict`` runs per
  batch: decoding checks, the model, the records) at batch 1 and batch 32, in photos per second;
- the same model's ``serving_default`` called directly on the photos' bytes at the same batch
  sizes (an export only), the cost a TF Serving client pays without the command's checks.

Each figure follows one warm-up batch (graph tracing, thread pools). Wall time on whatever device
TensorFlow picks (here 2 CPU cores). ``--model`` takes an export directory (default
``runs/demo/export``, written by ``--mode=export`` after the demo) or a finished workdir (the
OpenCV proposal path; no served column then).

Usage (from the repository root, after the demo and its export):
    .venv/bin/python benchmarks/bench_predict.py
    .venv/bin/python benchmarks/bench_predict.py --model=runs/demo --photos 32
"""

from __future__ import annotations

import argparse
import io
import os
import pathlib
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from affect_tf import predictor as predictor_lib  # noqa: E402

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "motorcycle_left")


def photo_files(folder: pathlib.Path, count: int) -> list[pathlib.Path]:
    """``count`` JPEG files of scikit-image's photographs (repeated in turn) in ``folder``."""
    from skimage import data  # noqa: PLC0415  (the test / bench extra)

    images = [getattr(data, name)() for name in PHOTOS if hasattr(data, name)]
    if not images:
        raise SystemExit("scikit-image ships none of the photographs "
                         f"{', '.join(PHOTOS)}; install the bench extra (pip install '.[bench]').")
    files = []
    for index in range(count):
        image = images[index % len(images)]
        buffer = io.BytesIO()
        Image.fromarray(np.asarray(image)[..., :3]).save(buffer, format="JPEG", quality=90)
        path = folder / f"photo_{index:04d}.jpg"
        path.write_bytes(buffer.getvalue())
        files.append(path)
    return files


def api_rate(model: str, files: list[pathlib.Path], batch_size: int) -> float:
    """Photos per second of Predictor.predict over ``files`` (after one warm-up batch)."""
    predictor = predictor_lib.Predictor.load(model, batch_size=batch_size)
    predictor.predict([str(path) for path in files[:batch_size]])
    start = time.perf_counter()
    records = predictor.predict([str(path) for path in files])
    elapsed = time.perf_counter() - start
    failed = [record["source"] for record in records if record.get("error")]
    if failed:
        raise SystemExit(f"predict could not read {failed[:3]}: the benchmark needs photos")
    return len(files) / elapsed


def served_rate(model: str, files: list[pathlib.Path], batch_size: int) -> float | None:
    """Photos per second of ``serving_default`` on the files' bytes (None: not an export)."""
    import tensorflow as tf  # noqa: PLC0415

    from affect_tf import export as export_lib  # noqa: PLC0415

    kind, directory, _ = predictor_lib.resolve_model(model)
    if kind != "saved_model":
        return None
    serve = tf.saved_model.load(str(directory)).signatures[export_lib.SERVING_SIGNATURE]
    encoded = [path.read_bytes() for path in files]
    batches = [encoded[i:i + batch_size] for i in range(0, len(encoded), batch_size)]
    serve(images=tf.constant(batches[0]))
    start = time.perf_counter()
    for batch in batches:
        serve(images=tf.constant(batch))
    return len(encoded) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="runs/demo/export")
    parser.add_argument("--photos", type=int, default=64, help="photos per measurement")
    parser.add_argument("--batch_sizes", type=int, nargs="+", default=[1, 32])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        files = photo_files(pathlib.Path(folder), args.photos)
        sizes = sorted({Image.open(path).size for path in files})
        print(f"bench_predict: {len(files)} JPEG photos ({len(sizes)} sizes: {sizes}), model "
              f"{args.model}, {os.cpu_count()} CPU cores")
        print(f"{'batch':>5} | {'predict (photos/s)':>18} | {'serving_default (photos/s)':>26} |"
              f" {'predict / served':>16}")
        for batch_size in args.batch_sizes:
            api = api_rate(args.model, files, batch_size)
            served = served_rate(args.model, files, batch_size)
            served_text = f"{served:26.2f}" if served else f"{'- (a workdir)':>26}"
            ratio = f"{api / served:16.2f}" if served else f"{'-':>16}"
            print(f"{batch_size:>5} | {api:18.2f} | {served_text} | {ratio}")


if __name__ == "__main__":
    main()
