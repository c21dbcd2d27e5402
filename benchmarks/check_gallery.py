"""Does the predict gallery render in a real browser? Builds one and takes its screenshot.

Writes a folder of inputs (``--scenes`` demo scenes from a seed the demo's dataset does not use,
scikit-image's photographs, and two files that are not images), runs
``python -m affect_tf.predict --model=<model> <folder> --html=<gallery>``, opens the gallery in
headless Chromium (Debian's ``chromium`` package), saves the screenshot and checks it is not
blank (many colours, the red AR boxes drawn) and that the page's script built one card per
readable input. Exit status 0 when all holds.

Usage (from the repository root, after the demo; its export or its workdir):
    .venv/bin/python benchmarks/check_gallery.py --model=runs/demo/export \
        --screenshot=/tmp/gallery.png
"""

from __future__ import annotations

import argparse
import io
import pathlib
import shutil
import subprocess
import sys
import tempfile

import numpy as np
from PIL import Image

from affect_tf.datasets.affect_demo import scenes

REPO = pathlib.Path(__file__).resolve().parents[1]
# Not the dataset's seed (scenes.DATASET_SEED): scenes the model never saw.
SCENE_SEED = 7


def write_inputs(folder: pathlib.Path, count: int) -> int:
    """The gallery's inputs; returns how many of them are readable images."""
    for index, image, label, _ in scenes.generate_scenes(SCENE_SEED, count):
        name = ("positive" if label else "negative") + f"_scene_{index:02d}.png"
        Image.fromarray(image).save(folder / name)
    readable = count
    try:
        from skimage import data  # noqa: PLC0415  (the test / bench extra)
        for name in ("astronaut", "coffee"):
            buffer = io.BytesIO()
            Image.fromarray(np.asarray(getattr(data, name)())[..., :3]).save(buffer, "JPEG")
            (folder / f"{name}.jpg").write_bytes(buffer.getvalue())
            readable += 1
    except ImportError:
        pass
    (folder / "notes.txt").write_text("not an image\n")
    (folder / "empty.jpg").write_bytes(b"")
    return readable


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="runs/demo/export")
    parser.add_argument("--scenes", type=int, default=6)
    parser.add_argument("--screenshot", default="gallery_screenshot.png")
    parser.add_argument("--window", default="1200,900", help="browser window, width,height")
    args = parser.parse_args()
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        raise SystemExit("No chromium on PATH (Debian: apt-get install -y chromium).")
    with tempfile.TemporaryDirectory() as scratch:
        scratch = pathlib.Path(scratch)
        inputs, gallery = scratch / "photos", scratch / "gallery"
        inputs.mkdir()
        readable = write_inputs(inputs, args.scenes)
        subprocess.run([sys.executable, "-m", "affect_tf.predict", f"--model={args.model}",
                        str(inputs), f"--html={gallery}", f"--output={scratch / 'out.jsonl'}"],
                       cwd=REPO, check=True)
        command = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                   f"--window-size={args.window}", f"--user-data-dir={scratch / 'profile'}"]
        url = (gallery / "index.html").as_uri()
        shot = pathlib.Path(args.screenshot).resolve()
        subprocess.run([*command, f"--screenshot={shot}", url], capture_output=True,
                       timeout=180, check=True)
        dom = subprocess.run([*command, "--dump-dom", url], capture_output=True, text=True,
                             timeout=180, check=True).stdout
    pixels = np.asarray(Image.open(shot).convert("RGB")).astype(np.float64)
    red = (pixels[..., 0] > 200) & (pixels[..., 1] < 60) & (pixels[..., 2] < 60)
    checks = {"not blank (pixel sd > 20)": pixels.std() > 20,
              "the AR boxes drawn (> 500 red pixels)": red.sum() > 500,
              f"one card per readable input ({readable})": dom.count('class="card"') == readable}
    print(f"screenshot: {shot} ({pixels.shape[1]} x {pixels.shape[0]})")
    for name, met in checks.items():
        print(f"check: {name}: {'met' if met else 'MISSED'}")
    sys.exit(0 if all(checks.values()) else 1)


if __name__ == "__main__":
    main()
