"""What a person looks at after :mod:`affect_tf.predict`: a static HTML gallery and Fig. 9 figures.

* :class:`Gallery` writes ``<dir>/index.html`` and ``<dir>/images/`` (a downscaled JPEG copy of
  each readable photo): one self-contained page, CSS and JavaScript inline, no network. Each
  photo shows its top AR regions (red; how many is chosen on the page), and optionally the top-1
  region by objectness (blue) and by Senti (green) where the model gives them (a run's workdir),
  with its label and probabilities. The page filters by label, sorts by confidence (the fused
  probability of the predicted label) and lists the unreadable files with their reasons (that
  list is plain HTML, readable without JavaScript). Its settings can be linked:
  ``index.html#label=negative&sort=desc&regions=1`` (``sort``: ``order``, ``desc``, ``asc``).
* :func:`write_figure` draws one image as the paper's Fig. 9
  (:func:`affect_tf.visualize.draw_box_panels`): the whole image, the m candidates, the top-1
  region by Obj, Senti and AR. A SavedModel returns no candidates: its figure shows the whole
  image and the top-K regions.

Both read the records of :mod:`affect_tf.predictor` (boxes ``[x0, y0, x1, y1]`` in the image's
pixels) and never TensorFlow.
"""

from __future__ import annotations

import html
import json
import os
import pathlib
import re

import numpy as np
from PIL import Image

from affect_tf import io as io_lib
from affect_tf import visualize

# Longest side of the gallery's copy of a photo, pixels.
DISPLAY_SIDE = 640
_ENTRIES = ".entries.jsonl"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_stem(name: str, limit: int = 60) -> str:
    """A file-name-safe version of a path's last component without its extension (figure and
    image names; they are numbered too, so two files with one stem do not collide)."""
    base = os.path.splitext(os.path.basename(name.rstrip("/\\")))[0]
    stem = _UNSAFE.sub("_", base).strip("._")
    return stem[:limit] or "image"


def normalized_box(box_xyxy, height: int, width: int) -> list[float]:
    """A pixel box ``[x0, y0, x1, y1]`` as normalized ``[y1, x1, y2, x2]`` (visualize's)."""
    x0, y0, x1, y1 = (float(value) for value in box_xyxy)
    return [y0 / height, x0 / width, y1 / height, x1 / width]


def _script_json(value) -> str:
    """JSON that is safe inside a ``<script>`` element (no ``</script>`` can end it early)."""
    text = json.dumps(value, ensure_ascii=True, allow_nan=False)
    return text.replace("</", "<\\/").replace("<!--", "<\\!--")


class Gallery:
    """Writes the gallery of one prediction run, record by record, in input order.

    Memory stays bounded: each photo's copy is written when it is added, and the page's entries
    wait in a small file in ``directory`` until :meth:`close` writes ``index.html``.

    Args:
        directory: where ``index.html`` and ``images/`` go (created).
        title: the page's title.
        model: one line naming the model, shown on the page.
    """

    def __init__(self, directory: str | os.PathLike, title: str = "affect_tf predictions",
                 model: str = ""):
        self.directory = pathlib.Path(directory)
        (self.directory / "images").mkdir(parents=True, exist_ok=True)
        self.title = title
        self.model = model
        self._entries_path = self.directory / _ENTRIES
        self._entries = open(self._entries_path, "w", encoding="utf-8")  # noqa: SIM115
        self._count = 0
        self._top_k = 0

    def add(self, record: dict, image: np.ndarray | None = None, path: str | None = None,
            figure: str | os.PathLike | None = None) -> None:
        """Adds one record (a line of :mod:`affect_tf.predict`: ``file`` and the predictor's
        keys).

        Args:
            record: the record.
            image: its decoded uint8 ``[H, W, 3]`` image when at hand; else ``path`` is read.
            path: the file to read the image from when ``image`` is None.
            figure: its Fig. 9 PNG, linked from the page when inside the gallery's folder.
        """
        self._count += 1
        entry = {"n": self._count, "file": record["file"], "error": record.get("error")}
        if entry["error"] is None and image is None:
            try:
                image = io_lib.decode_image_bytes(pathlib.Path(path).read_bytes(), str(path))
            except (OSError, io_lib.ImageDecodeError, TypeError) as error:
                entry["error"] = f"gallery: cannot read it again ({error})"
        if entry["error"] is None:
            name = f"images/{self._count:06d}-{safe_stem(record['file'])}.jpg"
            copy = Image.fromarray(image)
            copy.thumbnail((DISPLAY_SIDE, DISPLAY_SIDE), Image.Resampling.BILINEAR)
            io_lib.atomic_write(self.directory / name,
                                lambda handle: copy.save(handle, format="JPEG", quality=85))
            probabilities = record["probabilities"]
            height, width = record["image_size"]
            entry.update({
                "img": name, "w": width, "h": height, "label": record["label"],
                "p": probabilities, "whole": record["whole_image_probabilities"],
                "conf": max(probabilities.values()),
                "regions": [{key: region[key] for key in ("box", "ar", "objectness", "senti")}
                            for region in record["regions"]],
                "obj": (record.get("top_objectness") or {}).get("box"),
                "senti": (record.get("top_senti") or {}).get("box")})
            self._top_k = max(self._top_k, len(record["regions"]))
            if figure is not None:
                try:
                    entry["figure"] = pathlib.Path(figure).resolve().relative_to(
                        self.directory.resolve()).as_posix()
                except ValueError:
                    pass
        self._entries.write(_script_json(entry) + "\n")

    def close(self) -> pathlib.Path:
        """Writes ``index.html`` (atomically) and returns its path."""
        self._entries.close()
        unreadable = []
        with open(self._entries_path, encoding="utf-8") as entries:
            for line in entries:
                entry = json.loads(line)
                if entry["error"] is not None:
                    unreadable.append((entry["file"], entry["error"]))
        index = self.directory / "index.html"

        def write(handle) -> None:
            handle.write(_head(self.title, self.model, self._count, unreadable,
                               self._top_k).encode("utf-8"))
            handle.write(b"<script>\nconst DATA = [\n")
            with open(self._entries_path, encoding="utf-8") as entries:
                for line in entries:
                    handle.write(line.rstrip("\n").encode("utf-8") + b",\n")
            handle.write(b"];\n")
            handle.write(_SCRIPT.encode("utf-8"))
            handle.write(b"</script>\n</body>\n</html>\n")

        io_lib.atomic_write(index, write)
        self._entries_path.unlink()
        return index


def _head(title: str, model: str, count: int, unreadable: list[tuple[str, str]],
          top_k: int) -> str:
    colours = visualize.SELECTION_COLOURS
    rows = "".join(f"<tr><td>{html.escape(name)}</td><td>{html.escape(reason)}</td></tr>\n"
                   for name, reason in unreadable)
    options = "".join(f'<option value="{k}"{" selected" if k == top_k else ""}>{k}'
                      f"</option>" for k in range(0, top_k + 1))
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 16px; background: #f4f4f4; color: #222; }}
header p {{ margin: 4px 0; color: #555; }}
.controls {{ display: flex; flex-wrap: wrap; gap: 16px; align-items: center; margin: 12px 0;
  padding: 8px 12px; background: #fff; border-radius: 6px; }}
.swatch {{ display: inline-block; width: 12px; height: 12px; border: 2px solid;
  vertical-align: -2px; }}
#grid {{ display: grid; grid-template-columns: repeat(auto-fill, minmax(260px, 1fr)); gap: 12px; }}
.card {{ margin: 0; background: #fff; border-radius: 6px; padding: 8px;
  box-shadow: 0 1px 3px #0002; }}
.frame {{ position: relative; line-height: 0; }}
.frame img {{ width: 100%; height: auto; display: block; }}
.frame svg {{ position: absolute; left: 0; top: 0; width: 100%; height: 100%; }}
figcaption {{ font-size: 13px; margin-top: 6px; }}
.name {{ word-break: break-all; color: #444; }}
.label {{ display: inline-block; padding: 1px 6px; border-radius: 4px; color: #fff;
  font-weight: 600; }}
.positive {{ background: #2e7d32; }} .negative {{ background: #c62828; }}
.bar {{ height: 6px; background: #c62828; border-radius: 3px; margin: 4px 0; overflow: hidden; }}
.bar span {{ display: block; height: 100%; background: #2e7d32; }}
table {{ border-collapse: collapse; background: #fff; }}
td, th {{ border: 1px solid #ccc; padding: 4px 8px; text-align: left; font-size: 13px; }}
</style>
</head>
<body>
<header>
<h1>{html.escape(title)}</h1>
<p>{count} files; model: {html.escape(model)}</p>
<p>Boxes: <span class="swatch" style="border-color:{colours['ar']}"></span> top regions by the
model's ranking (AR by default), best first, thickest;
<span class="swatch" style="border-color:{colours['obj']}"></span> top-1 by objectness;
<span class="swatch" style="border-color:{colours['senti']}"></span> top-1 by Senti.</p>
</header>
<div class="controls">
<label>Label <select id="filter"><option value="all">all</option>
<option value="positive">positive</option>
<option value="negative">negative</option></select></label>
<label>Sort <select id="sort"><option value="order">input order</option>
<option value="desc">confidence, highest first</option>
<option value="asc">confidence, lowest first</option></select></label>
<label>AR regions <select id="regions">{options}</select></label>
<label><input type="checkbox" id="obj"> top-1 objectness</label>
<label><input type="checkbox" id="senti"> top-1 Senti</label>
<span id="shown"></span>
</div>
<div id="grid"></div>
<h2>Unreadable files ({len(unreadable)})</h2>
<table id="unreadable"><tr><th>file</th><th>reason</th></tr>
{rows}</table>
"""


_SCRIPT = """
const COLOURS = {ar: "%(ar)s", obj: "%(obj)s", senti: "%(senti)s"};
const SVG = "http://www.w3.org/2000/svg";
function rect(svg, box, colour, width) {
  const r = document.createElementNS(SVG, "rect");
  r.setAttribute("x", box[0]); r.setAttribute("y", box[1]);
  r.setAttribute("width", Math.max(box[2] - box[0], 0));
  r.setAttribute("height", Math.max(box[3] - box[1], 0));
  r.setAttribute("fill", "none"); r.setAttribute("stroke", colour);
  r.setAttribute("stroke-width", width); r.setAttribute("vector-effect", "non-scaling-stroke");
  svg.appendChild(r);
}
function card(d, settings) {
  const figure = document.createElement("figure");
  figure.className = "card";
  figure.dataset.label = d.label;
  figure.dataset.conf = d.conf;
  const frame = document.createElement("div");
  frame.className = "frame";
  const img = document.createElement("img");
  img.src = d.img; img.alt = d.file; img.loading = "lazy";
  img.width = d.w; img.height = d.h;
  frame.appendChild(img);
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", "0 0 " + d.w + " " + d.h);
  svg.setAttribute("preserveAspectRatio", "none");
  if (settings.obj && d.obj) rect(svg, d.obj, COLOURS.obj, 2);
  if (settings.senti && d.senti) rect(svg, d.senti, COLOURS.senti, 2);
  d.regions.slice(0, settings.regions).reverse().forEach(function (region, i, shown) {
    rect(svg, region.box, COLOURS.ar, i === shown.length - 1 ? 4 : 2);
  });
  frame.appendChild(svg);
  const link = document.createElement("a");
  link.href = d.figure || d.img;
  link.appendChild(frame);
  figure.appendChild(link);
  const caption = document.createElement("figcaption");
  const label = document.createElement("span");
  label.className = "label " + d.label;
  label.textContent = d.label;
  caption.appendChild(label);
  caption.appendChild(document.createTextNode(
      " p(positive) " + d.p.positive.toFixed(3) + ", whole image " +
      d.whole.positive.toFixed(3)));
  const bar = document.createElement("div");
  bar.className = "bar";
  const fill = document.createElement("span");
  fill.style.width = (100 * d.p.positive).toFixed(1) + "%%";
  bar.appendChild(fill);
  caption.appendChild(bar);
  const name = document.createElement("div");
  name.className = "name";
  name.textContent = d.file;
  caption.appendChild(name);
  if (d.regions.length) {
    const top = document.createElement("div");
    const r = d.regions[0];
    top.textContent = "top region: AR " + r.ar.toFixed(3) + ", objectness " +
        r.objectness.toFixed(3) + ", Senti " + r.senti.toFixed(3);
    caption.appendChild(top);
  }
  figure.appendChild(caption);
  return figure;
}
function render() {
  const settings = {
    filter: document.getElementById("filter").value,
    sort: document.getElementById("sort").value,
    regions: Number(document.getElementById("regions").value),
    obj: document.getElementById("obj").checked,
    senti: document.getElementById("senti").checked,
  };
  let items = DATA.filter(function (d) {
    return d.error === null && (settings.filter === "all" || d.label === settings.filter);
  });
  if (settings.sort !== "order") {
    const sign = settings.sort === "desc" ? -1 : 1;
    items.sort(function (a, b) { return sign * (a.conf - b.conf) || a.n - b.n; });
  }
  const grid = document.getElementById("grid");
  grid.textContent = "";
  items.forEach(function (d) { grid.appendChild(card(d, settings)); });
  document.getElementById("shown").textContent = items.length + " shown";
}
if (!DATA.some(function (d) { return d.obj || d.senti; })) {
  ["obj", "senti"].forEach(function (id) {  // A SavedModel returns the top K regions alone.
    const box = document.getElementById(id);
    box.disabled = true;
    box.parentNode.title = "only a run's workdir as --model gives these";
  });
}
// The settings can be linked: index.html#label=negative&sort=desc&regions=1
const linked = new URLSearchParams(location.hash.slice(1));
[["label", "filter"], ["sort", "sort"], ["regions", "regions"]].forEach(function (pair) {
  if (linked.has(pair[0])) document.getElementById(pair[1]).value = linked.get(pair[0]);
});
["filter", "sort", "regions", "obj", "senti"].forEach(function (id) {
  document.getElementById(id).addEventListener("change", render);
});
render();
""" % {name: visualize.SELECTION_COLOURS[name] for name in ("ar", "obj", "senti")}


def write_figure(record: dict, image: np.ndarray, path: str | os.PathLike) -> pathlib.Path:
    """One image as the paper's Fig. 9 (module docstring), from its record.

    Args:
        record: a record of :mod:`affect_tf.predictor` with ``candidates`` when the model has
            them (a run's workdir, ``candidates=True``).
        image: the decoded uint8 ``[H, W, 3]`` image.
        path: where the PNG goes.

    Returns:
        The PNG path.
    """
    height, width = image.shape[:2]
    colours = visualize.SELECTION_COLOURS

    def boxes(regions) -> np.ndarray:
        return np.array([normalized_box(region["box"], height, width) for region in regions
                         if region is not None], np.float64).reshape(-1, 4)

    probabilities = record["probabilities"]
    panels = [(f"{record['label']} (p+ {probabilities['positive']:.2f}, whole "
               f"{record['whole_image_probabilities']['positive']:.2f})", boxes([]),
               colours["ar"])]
    if "candidates" in record:
        panels += [(f"{len(record['candidates'])} candidates", boxes(record["candidates"]),
                    visualize.CANDIDATE_COLOUR),
                   ("top-1 Obj", boxes([record.get("top_objectness")]), colours["obj"]),
                   ("top-1 Senti", boxes([record.get("top_senti")]), colours["senti"]),
                   ("top-1 AR", boxes(record["regions"][:1]), colours["ar"])]
    else:
        panels.append((f"top {len(record['regions'])} regions (no candidates in a SavedModel)",
                       boxes(record["regions"]), colours["ar"]))
    return visualize.draw_box_panels(image, panels, path, title=record.get("file")
                                     or record.get("source"))
