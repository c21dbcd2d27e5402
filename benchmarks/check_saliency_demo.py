"""Does the fine-tuned CNN look at the face? Occlusion sensitivity on a finished demo run.

For the first ``--images`` test scenes of a finished ``affect_demo`` run, the occlusion map of
the true class on the whole-image view (``affect_tf.experiments.saliency.occlusion_map``, the
map ``--mode=experiments`` draws) and where its peak falls: inside the sentiment-bearing face's
box (``object_box``, mapped into the view), or not. Beside it, the share a peak at a uniformly
random pixel would get (the mean share of the view the face covers): the chance level. Split by
the face's size (close-ups, where the 72 px view shows the expression, and distant faces, where
it is a smudge and only the regions can see it), since the demo is built that way.

Usage (from the repository root, after the demo; ~1 min for 40 scenes on 2 cores):
    .venv/bin/python benchmarks/check_saliency_demo.py --workdir runs/demo --images 40
"""

from __future__ import annotations

import argparse
import os
import pathlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from affect_tf import io as io_lib  # noqa: E402
from affect_tf import stages  # noqa: E402
from affect_tf import train as train_lib  # noqa: E402
from affect_tf.experiments import figures, saliency  # noqa: E402
from affect_tf.testing import finished_run  # noqa: E402

# A face covering more than this share of the scene is a close-up (the demo's distant faces
# cover 1.4-3 %).
CLOSE_UP_AREA = 0.05


def box_in_view(box: np.ndarray, config) -> np.ndarray:
    """A normalized ``[y1, x1, y2, x2]`` box of the scene in pixels of the whole-image view: the
    scene warped to ``resize_size`` squared, then the centre ``image_size`` crop (views.py)."""
    resize, size = config.model.resize_size, config.model.image_size
    offset = (resize - size) / 2
    return np.clip(np.asarray(box, np.float64) * resize - offset, 0, size)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", default="runs/demo", help="a finished demo run's workdir")
    parser.add_argument("--images", type=int, default=40, help="test scenes checked")
    args = parser.parse_args()

    run = finished_run(pathlib.Path(args.workdir))
    config = run.config
    with np.load(run.predict_dir / "predictions_test.npz") as stored:
        test = {key: stored[key] for key in ("filename", "label", "object_box")}
    names = test["filename"].astype(str).tolist()[:args.images]
    encoded = {example["image/filename"].decode(): example["image"] for example in
               stages.data_lib.examples(run.builder, names).as_numpy_iterator()}
    classifier = train_lib.load_classifier(config.model, str(run.train_dir))
    rows = []
    for index, name in enumerate(names):
        view = figures.whole_image_view(io_lib.decode_image_bytes(encoded[name], name), config)
        result = saliency.occlusion_map(classifier, view, int(test["label"][index]),
                                        batch_size=config.evaluation.eval_batch_size)
        y1, x1, y2, x2 = box_in_view(test["object_box"][index], config)
        peak_y, peak_x = np.unravel_index(np.argmax(result.heat_map), result.heat_map.shape)
        inside = y1 <= peak_y + 0.5 <= y2 and x1 <= peak_x + 0.5 <= x2
        box = test["object_box"][index]
        rows.append((inside, (y2 - y1) * (x2 - x1) / view.shape[0] / view.shape[1],
                     (box[2] - box[0]) * (box[3] - box[1]) > CLOSE_UP_AREA))
    inside, chance, close_up = (np.array(column) for column in zip(*rows))
    print(f"{len(rows)} test scenes of {args.workdir}: the occlusion map's peak (true class, "
          "whole-image view) inside the face's box")
    for title, keep in (("all", np.ones_like(inside)), ("close-ups", close_up),
                        ("distant faces", ~close_up)):
        if keep.any():
            print(f"  {title:13s} {np.mean(inside[keep]):6.1%} of {int(keep.sum()):3d}   "
                  f"(chance: {np.mean(chance[keep]):5.1%})")


if __name__ == "__main__":
    main()
