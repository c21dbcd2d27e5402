"""The command ``python -m affect_tf.predict``: one line per file in input order, unreadable
files named with their reason (exit 0), a killed run resumed to the bytes of an uninterrupted one,
refusals in one line (exit 2), the gallery and the figures.

Most tests call :func:`affect_tf.predict.main` in this process with models loaded once (the shared
finished tiny run, ``finished``: conftest.py, and its export); the slow ones run the real command.
"""

import csv
import json
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from affect_tf import predict as predict_lib
from affect_tf.config import LABEL_NAMES
from affect_tf.predictor import Predictor
from affect_tf.testing import PHOTO_FOLDER_FILES, photo_folder

EXPECTED = PHOTO_FOLDER_FILES  # file -> None (a photo) or a fragment of its reason


@pytest.fixture(scope="module")
def models(exported_demo):
    """The finished run, its export and a Predictor of each."""
    config, export_root = exported_demo
    return {"config": config, "export": export_root,
            "saved_model": Predictor.load(export_root),
            "workdir": Predictor.load(config.workdir)}


@pytest.fixture
def photos(tmp_path):
    folder = tmp_path / "photos"
    photo_folder(folder)
    return folder


def _main(capsys, predictor, *args):
    """``main(args)`` in this process: (exit status, stdout, stderr)."""
    status = predict_lib.main([str(arg) for arg in args], predictor=predictor)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def _lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


def _names(folder: pathlib.Path) -> list[str]:
    return [os.path.join(str(folder), *name.split("/")) for name in EXPECTED]


# ---- the files -------------------------------------------------------------------------------

def test_paths_are_streamed_in_input_order_each_once(tmp_path, photos):
    (photos / "sub" / ".hidden").mkdir(parents=True)
    (photos / "sub" / ".hidden" / "x.png").write_bytes(b"")
    (photos / "out.jsonl").write_text("")
    warnings = []
    items = list(predict_lib.iter_inputs(
        [str(photos / "c_photo.jpg"), str(photos), str(photos / "nested" / "*.png"),
         str(photos / "gone.jpg"), str(tmp_path / "*.webp")],
        exclude=[str(photos / "out.jsonl")], warn=warnings.append))
    names = [item.name for item in items]
    # The explicit file first, then the folder's walk (without it again, the hidden entries or
    # the output); the glob's match was already listed; a missing path is a file with a reason.
    assert names == ([str(photos / "c_photo.jpg")]
                     + [name for name in _names(photos) if not name.endswith("c_photo.jpg")]
                     + [str(photos / "gone.jpg")])
    assert items[-1].path is None and items[-1].error == "no such file or directory"
    assert warnings == [f"{tmp_path / '*.webp'} matches no file"]


# ---- the command, in this process ------------------------------------------------------------

def test_a_folder_gives_one_line_per_file_and_exit_0(models, photos, capsys):
    status, out, err = _main(capsys, models["saved_model"], f"--model={models['export']}",
                             photos)
    assert status == 0, err
    lines = _lines(out)
    assert [line["file"] for line in lines] == _names(photos)
    for line, reason in zip(lines, EXPECTED.values()):
        assert list(line) == list(predict_lib.LINE_KEYS)
        assert line["model"] == models["saved_model"].model_id
        if reason is None:
            assert line["error"] is None and line["label"] in LABEL_NAMES
            assert sum(line["probabilities"].values()) == pytest.approx(1, abs=1e-5)
            assert line["regions"] and line["image_size"]
        else:
            assert reason in line["error"] and line["label"] is None
            assert line["probabilities"] is None and line["regions"] == []
    assert "10 files" in err and "7 labelled" in err and "3 unreadable" in err
    for name, reason in EXPECTED.items():
        if reason is not None:
            assert f"  {photos / name}: " in err and reason in err
    assert "Traceback" not in err


@pytest.mark.parametrize("kind, suffix", [("saved_model", ".jsonl"), ("workdir", ".csv")])
def test_a_killed_run_resumed_ends_as_an_uninterrupted_one(models, photos, tmp_path, capsys,
                                                             kind, suffix, monkeypatch):
    predictor = models[kind]
    model = models["export"] if kind == "saved_model" else models["config"].workdir
    full = tmp_path / f"full{suffix}"
    args = (f"--model={model}", photos, "--batch_size=3")
    assert _main(capsys, predictor, *args, f"--output={full}")[0] == 0
    expected = full.read_bytes()
    rows = expected.splitlines(keepends=True)
    header = 1 if suffix == ".csv" else 0
    assert len(rows) == 10 + header
    if suffix == ".csv":
        parsed = list(csv.DictReader(full.read_text().splitlines()))
        assert [row["file"] for row in parsed] == _names(photos)
        assert [bool(row["label"]) for row in parsed] == [r is None for r in EXPECTED.values()]

    calls = []
    original = predictor.predict_decoded

    def counting(decoded, **kwargs):
        calls.append([item.source for item in decoded])
        return original(decoded, **kwargs)

    monkeypatch.setattr(predictor, "predict_decoded", counting)
    # Killed after 4 whole lines, in the middle of the 5th (and, second case, between lines).
    for done, partial in ((4, 17), (6, 0)):
        cut = tmp_path / f"cut{done}{suffix}"
        cut.write_bytes(b"".join(rows[:header + done]) + rows[header + done][:partial])
        calls.clear()
        status, _, err = _main(capsys, predictor, *args, f"--output={cut}")
        assert status == 0, err
        assert cut.read_bytes() == expected
        assert f"{10 - done} computed now, {done} kept from {cut}" in err
        assert ("partial last line dropped" in err) == (partial > 0)
        # Only the batches holding unfinished files ran, each whole (the same company as
        # before, hence the same floats): files 4-6 (when 5 and 6 were missing), 7-9 and 10.
        names = _names(photos)
        starts = range(done // 3 * 3, 10, 3)
        assert calls == [names[start:start + 3] for start in starts]
    # Finished: a rerun computes nothing and leaves the file as it is.
    calls.clear()
    status, _, err = _main(capsys, predictor, *args, f"--output={full}")
    assert status == 0 and full.read_bytes() == expected and calls == []
    assert "0 computed now, 10 kept" in err


def test_what_is_not_this_models_output_is_refused_in_one_line(models, photos, tmp_path,
                                                               capsys):
    output = tmp_path / "out.jsonl"
    _main(capsys, models["saved_model"], f"--model={models['export']}", photos,
          f"--output={output}")
    before = output.read_bytes()
    status, out, err = _main(capsys, models["workdir"], f"--model={models['config'].workdir}",
                             photos, f"--output={output}")
    assert status == 2 and out == "" and output.read_bytes() == before
    assert err.count("\n") == 1 and "holds predictions of another model" in err
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes\nsecond line\n")
    status, _, err = _main(capsys, models["saved_model"], f"--model={models['export']}", photos,
                           f"--output={notes}")
    assert status == 2 and "is not a line of affect_tf.predict" in err
    assert notes.read_text() == "my notes\nsecond line\n"
    status, _, err = _main(capsys, models["saved_model"], f"--model={models['export']}", photos,
                           f"--output={tmp_path}")
    assert status == 2 and "a folder; pass a file name" in err


def test_a_bad_model_is_one_line_and_exit_2(photos, tmp_path, capsys):
    for model, message in ((tmp_path / "nothing", "no such directory"),
                           (photos, "neither a SavedModel nor a finished run")):
        status, out, err = _main(capsys, None, f"--model={model}", photos)
        assert status == 2 and out == ""
        assert err.startswith(f"predict: error: --model {model}: {message}")
        assert err.count("\n") == 1
    with pytest.raises(SystemExit) as exit_info:  # argparse: usage errors exit 2 too.
        predict_lib.main(["--model=x", "--batch_size=0", str(photos)])
    assert exit_info.value.code == 2


def test_the_api_the_command_and_serving_default_agree(models, photos, tmp_path, capsys):
    predictor = models["saved_model"]
    output = tmp_path / "out.jsonl"
    _main(capsys, predictor, f"--model={models['export']}", photos, f"--output={output}",
          "--batch_size=16")
    lines = [line for line in _lines(output.read_text()) if line["error"] is None]
    paths = [line["file"] for line in lines]
    predictor.batch_size = 16
    records = predictor.predict(paths)
    served = tf.saved_model.load(str(models["export"] / "1")).signatures["serving_default"](
        images=tf.constant([pathlib.Path(path).read_bytes() for path in paths]))
    for line, record in zip(lines, records):  # The same batches: the same numbers.
        assert {key: line[key] for key in predict_lib.LINE_KEYS[2:]} == {
            key: record[key] for key in predict_lib.LINE_KEYS[2:]}
    np.testing.assert_array_equal([line["label_index"] for line in lines],
                                  served["label"].numpy())
    np.testing.assert_allclose([[line["probabilities"][n] for n in LABEL_NAMES] for line in lines],
                               served["probabilities"].numpy(), atol=1e-5)


def test_gallery_and_figures_skip_their_own_folder_and_survive_a_rerun(models, photos, capsys):
    predictor = models["workdir"]
    args = (f"--model={models['config'].workdir}", photos, f"--output={photos / 'out.csv'}",
            f"--html={photos / 'gallery'}", "--figures=3", "--batch_size=4")
    status, _, err = _main(capsys, predictor, *args)
    assert status == 0, err
    assert "10 files" in err and "figures: 3 new in" in err  # Its own outputs are no inputs.
    gallery = photos / "gallery"
    page = (gallery / "index.html").read_text()
    assert "http://" not in page.replace("http://www.w3.org/2000/svg", "")
    assert "https://" not in page
    body = page[page.index("const DATA = [\n") + len("const DATA = [\n"):page.index("\n];\n")]
    entries = [json.loads(line.rstrip(",")) for line in body.splitlines()]
    assert [entry["file"] for entry in entries] == _names(photos)
    good = [entry for entry in entries if entry["error"] is None]
    assert len(good) == 7 and all((gallery / entry["img"]).is_file() for entry in good)
    assert all(entry["obj"] and entry["senti"] and entry["regions"] for entry in good)
    assert Image.open(gallery / good[0]["img"]).size == (200, 150)
    for name, reason in EXPECTED.items():
        if reason is not None:
            assert f"<tr><td>{photos / name}</td><td>" in page
    figures = sorted((gallery / "figures").iterdir())
    assert [path.name for path in figures] == [
        "000001-a_scene.png", "000002-b_scene.png", "000003-c_photo.png"]
    assert [entry.get("figure") for entry in good[:3]] == [
        f"figures/{path.name}" for path in figures]
    assert Image.open(figures[0]).size[0] > 3 * Image.open(figures[0]).size[1]  # 5 panels
    # A rerun keeps every line and figure, and writes the same page.
    (figures[1]).unlink()
    status, _, err = _main(capsys, predictor, *args)
    assert status == 0 and "0 computed now, 10 kept" in err and "figures: 1 new in" in err
    assert (gallery / "index.html").read_text() == page


def test_figures_of_a_saved_model_show_its_top_regions(models, photos, tmp_path, capsys):
    status, out, err = _main(capsys, models["saved_model"], f"--model={models['export']}",
                             photos / "h_truncated.jpg", photos / "b_scene.png",
                             photos / "a_scene.png", "--figures=1",
                             f"--figures_dir={tmp_path / 'figures'}")
    assert status == 0 and len(_lines(out)) == 3
    # The first readable file (the second input) only; two panels: no candidates to show.
    (figure,) = (tmp_path / "figures").iterdir()
    assert figure.name == "000002-b_scene.png"
    width, height = Image.open(figure).size
    assert 1.2 * height < width < 2.5 * height


def test_a_csv_killed_while_writing_its_header_starts_again(models, photos, tmp_path, capsys):
    args = (f"--model={models['export']}", photos, "--batch_size=5")
    full, cut = tmp_path / "full.csv", tmp_path / "cut.csv"
    _main(capsys, models["saved_model"], *args, f"--output={full}")
    cut.write_bytes(full.read_bytes()[:7])
    status, _, err = _main(capsys, models["saved_model"], *args, f"--output={cut}")
    assert status == 0 and cut.read_bytes() == full.read_bytes()
    assert "10 computed now" in err


# ---- the real command ------------------------------------------------------------------------

def _command(*args, **kwargs):
    import affect_tf

    env = dict(os.environ, PYTHONPATH=str(pathlib.Path(affect_tf.__file__).parents[1]),
               CUDA_VISIBLE_DEVICES="")
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # The command hides TensorFlow's noise itself.
    return subprocess.Popen([sys.executable, "-m", "affect_tf.predict", *map(str, args)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            **kwargs)


@pytest.mark.slow
def test_the_command_killed_and_run_again_ends_as_an_uninterrupted_run(models, photos,
                                                                         tmp_path, capsys):
    for copy in range(4):  # 40 files: time to kill it half-way.
        shutil.copytree(photos, tmp_path / "many" / f"copy{copy}", ignore=shutil.ignore_patterns(
            ".*"))
    args = (f"--model={models['export']}", tmp_path / "many", "--batch_size=2")
    uninterrupted = tmp_path / "uninterrupted.jsonl"
    predictor = models["saved_model"]
    assert _main(capsys, predictor, *args, f"--output={uninterrupted}")[0] == 0

    output = tmp_path / "out.jsonl"
    process = _command(*args, f"--output={output}")
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None:
        if output.exists() and output.read_bytes().count(b"\n") >= 8:
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.02)
    process.wait(60)
    assert process.returncode == -signal.SIGKILL, "finished before it could be killed"
    kept = output.read_bytes().count(b"\n")
    assert 8 <= kept < 40
    rerun = _command(*args, f"--output={output}")
    _, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, err
    assert f"{40 - kept} computed now, {kept} kept" in err
    assert output.read_bytes() == uninterrupted.read_bytes()
    assert "Traceback" not in err and "cuda" not in err.lower()

    bad = _command(f"--model={tmp_path / 'nothing'}", photos)
    out, err = bad.communicate(timeout=300)
    assert bad.returncode == 2 and out == "" and "Traceback" not in err
    assert err.strip().splitlines() == [
        f"predict: error: --model {tmp_path / 'nothing'}: no such directory; expected an export "
        "directory (saved_model.pb, or version folders 1/, 2/ ... written by --mode=export) or a "
        "finished run's workdir (with its config.json)."]


@pytest.mark.slow
def test_the_gallery_renders_in_headless_chromium(models, photos, tmp_path, capsys):
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which(
        "google-chrome")
    if browser is None:
        pytest.skip("no chromium (apt-get install -y chromium)")
    gallery, output = tmp_path / "gallery", tmp_path / "out.jsonl"
    assert _main(capsys, models["workdir"], f"--model={models['config'].workdir}", photos,
                 f"--html={gallery}", f"--output={output}")[0] == 0
    command = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
               "--window-size=1200,900", f"--user-data-dir={tmp_path / 'profile'}"]
    url = (gallery / "index.html").as_uri()
    shot = tmp_path / "shot.png"
    subprocess.run([*command, f"--screenshot={shot}", url], capture_output=True, timeout=120,
                   check=True)
    pixels = np.asarray(Image.open(shot).convert("RGB")).astype(np.float64)
    assert pixels.shape[:2] == (900, 1200)
    assert pixels.std() > 20  # Not a blank page: photos, text, boxes.
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 200
    red = (pixels[..., 0] > 200) & (pixels[..., 1] < 60) & (pixels[..., 2] < 60)
    assert red.sum() > 500  # The AR boxes are drawn.
    dom = subprocess.run([*command, "--dump-dom", url], capture_output=True, text=True,
                         timeout=120, check=True).stdout
    assert dom.count('class="card"') == 7  # The script ran: one card per readable photo.
    assert dom.count("<tr><td>") == 3
    # Filtered by label and sorted by confidence (settings linked in the address).
    lines = [line for line in _lines(output.read_text())
             if line["error"] is None]
    for label in LABEL_NAMES:
        dom = subprocess.run([*command, "--dump-dom", f"{url}#label={label}&sort=asc"],
                             capture_output=True, text=True, timeout=120, check=True).stdout
        cards = re.findall(r'class="card" data-label="(\w+)" data-conf="([\d.]+)"', dom)
        assert [card[0] for card in cards] == [label] * sum(
            line["label"] == label for line in lines)
        confidences = [float(card[1]) for card in cards]
        assert confidences == sorted(confidences)
