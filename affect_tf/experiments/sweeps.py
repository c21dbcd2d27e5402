"""The paper's parameter sweeps (Figs. 6 and 7), re-read from a finished evaluation's predictions.

The CNN scores every candidate region once (``predictions_validation.npz``,
``predictions_test.npz`` of the evaluation), so alpha (Eq. 5), beta (Eq. 7) and K only re-rank
and re-fuse stored probabilities: no CNN pass. Every point goes through the evaluation's own
functions (:func:`affect_tf.evaluate.select`, :func:`~affect_tf.evaluate.fuse`,
:func:`~affect_tf.evaluate.fit_svm`), so the point at the run's own settings is the run's own
test figure, bit for bit.

* :func:`alpha_beta_sweep`: AR + sum pooling for every (alpha, beta) (Fig. 6);
* :func:`top_k_sweep`: AR + sum, max and concatenation for every K (Fig. 7);
* :func:`write_csv`, :func:`plot_alpha_beta`, :func:`plot_top_k`: the table and the figures.

A prediction dict is what the evaluation stores: ``label`` [N] int, ``global_probs`` [N, 2],
``candidate_probs`` [N, m, 2], ``objectness`` [N, m], ``num_valid`` [N], ``boxes`` [N, m, 4]
(normalized [y1, x1, y2, x2]), and possibly more keys, which are ignored.
"""

from __future__ import annotations

import csv
import dataclasses
import io as std_io
import pathlib
from collections.abc import Iterable, Sequence

import matplotlib

matplotlib.use("Agg")  # Headless: figures are written to files, never shown.
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.model_selection import StratifiedKFold  # noqa: E402

from affect_tf import evaluate as evaluate_lib  # noqa: E402
from affect_tf import io as io_lib  # noqa: E402
from affect_tf import metrics as metrics_lib  # noqa: E402
from affect_tf import visualize  # noqa: E402
from affect_tf.config import FusionConfig, RegionConfig  # noqa: E402

# Folds of the concatenation SVM's cross-validation inside the validation part: the demo
# benchmark's (benchmarks/bench_demo_seeds.py), so its figures and these agree.
CROSS_VALIDATION_FOLDS = 5

FIG6_NOTE = ("Paper, Fig. 6: validation accuracy of AR + sum pooling rises with alpha up to "
             "about 0.6, then falls; beta is best near 0.3.")
FIG7_NOTE = "Paper, Fig. 7: accuracy rises with K up to 8, then flattens or falls."


def _accuracy(labels, predicted) -> float:
    """Accuracy exactly as the evaluation computes it (:mod:`affect_tf.metrics`)."""
    return metrics_lib.classification_metrics(labels, predicted)["accuracy"]


def _sum_and_max(part: dict, selected: dict, fusion_config: FusionConfig) -> dict[str, float]:
    """Accuracy of AR + sum (Eq. 7) and AR + max (Eq. 6) on one part."""
    return {fusion: _accuracy(part["label"], evaluate_lib.fuse(
        fusion, part["global_probs"], selected, fusion_config)) for fusion in ("sum", "max")}


def _checked_parts(validation: dict, test: dict) -> None:
    """Both parts carry what :func:`affect_tf.evaluate.select` and the fusions read."""
    needed = ("label", "global_probs", "candidate_probs", "objectness", "num_valid", "boxes")
    for name, part in (("validation", validation), ("test", test)):
        missing = [key for key in needed if key not in part]
        if missing:
            raise ValueError(
                f"The {name} predictions lack {', '.join(missing)}; expected the keys of "
                f"predictions_{name}.npz ({', '.join(needed)}). Received: keys {sorted(part)}")


def alpha_beta_sweep(validation: dict, test: dict, region_config: RegionConfig,
                     fusion_config: FusionConfig, alphas: Iterable[float],
                     betas: Iterable[float]) -> list[dict]:
    """Accuracy of AR + sum pooling for every (alpha, beta): the paper's Fig. 6.

    Sum pooling fits nothing, so the validation and the test accuracy are both direct. K, the
    objectness normalization and the AR formula are ``region_config``'s.

    Args:
        validation: the validation part's predictions (see the module docstring).
        test: the test part's predictions.
        region_config: the run's region settings; its ``alpha`` is replaced by each of ``alphas``.
        fusion_config: the run's fusion settings; its ``beta`` is replaced by each of ``betas``.
        alphas: weights of Senti in the AR score (Eq. 5), each in [0, 1].
        betas: weights of the regions in sum pooling (Eq. 7), each in [0, 1].

    Returns:
        One row per (alpha, beta), alpha-major: ``alpha``, ``beta``, ``top_k``,
        ``validation_ar_sum``, ``test_ar_sum`` (accuracies in [0, 1]).

    Raises:
        ValueError: an alpha or beta outside [0, 1] (``ConfigError``), empty ``alphas`` or
            ``betas``, or a part without the keys the evaluation stores.
    """
    _checked_parts(validation, test)
    alphas, betas = [float(a) for a in alphas], [float(b) for b in betas]
    if not alphas or not betas:
        raise ValueError(f"alphas and betas must each hold at least one value. "
                         f"Received: alphas={alphas}, betas={betas}")
    # Validated up front, so a bad value fails before minutes of re-ranking, not after.
    fusions = [dataclasses.replace(fusion_config, beta=beta).validate() for beta in betas]
    rows = []
    for alpha in alphas:
        regions = dataclasses.replace(region_config, alpha=alpha).validate()
        # One ranking per alpha serves every beta: beta only weighs the chosen regions.
        selected = {name: evaluate_lib.select(part, regions, "ar")
                    for name, part in (("validation", validation), ("test", test))}
        for fusion in fusions:
            row = {"alpha": alpha, "beta": fusion.beta, "top_k": regions.top_k}
            for name, part in (("validation", validation), ("test", test)):
                row[f"{name}_ar_sum"] = _accuracy(part["label"], evaluate_lib.fuse(
                    "sum", part["global_probs"], selected[name], fusion))
            rows.append(row)
    return rows


def _subset(arrays: dict, indices: np.ndarray) -> dict:
    """The rows ``indices`` of every per-image array of ``arrays``."""
    return {key: np.asarray(value)[indices] for key, value in arrays.items()}


def cross_validated_concat(part: dict, selected: dict, fusion_config: FusionConfig, seed: int,
                           folds: int = CROSS_VALIDATION_FOLDS) -> float:
    """Accuracy of the concatenation SVM (Eq. 8) by stratified k-fold cross-validation in a part.

    The SVM is trained on the validation part, so its in-sample accuracy there would flatter it;
    each fold is predicted by an SVM fitted on the other folds instead. The folds and the fits are
    those of ``benchmarks/bench_demo_seeds.py`` (``StratifiedKFold(shuffle=True,
    random_state=seed)``, :func:`affect_tf.evaluate.fit_svm` with ``seed``), so the same inputs
    give the same figure.

    Args:
        part: predictions with ``label`` [N] and ``global_probs`` [N, 2].
        selected: :func:`affect_tf.evaluate.select` of ``part`` (``region_probs`` [N, K, 2], ...).
        fusion_config: the SVM's kernel, C and features.
        seed: seed of the folds and of the SVM solver.
        folds: the number of folds, at least 2.

    Returns:
        The share of the N images predicted correctly by the SVM that did not see them.

    Raises:
        ValueError: a class has fewer than ``folds`` images (a fold would lack it).
    """
    labels = np.asarray(part["label"])
    counts = {label: int(np.sum(labels == label)) for label in (0, 1)}
    if min(counts.values()) < folds:
        raise ValueError(
            f"{folds}-fold cross-validation of the concatenation SVM needs at least {folds} "
            f"images of each class. Received: {counts[0]} negative and {counts[1]} positive")
    fields = {"label": labels, "global_probs": np.asarray(part["global_probs"])}
    correct = 0
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for fitted, held_out in splitter.split(np.zeros(len(labels)), labels):
        svm = evaluate_lib.fit_svm(_subset(fields, fitted), _subset(selected, fitted),
                                   fusion_config, seed)
        predicted = evaluate_lib.fuse("concat", fields["global_probs"][held_out],
                                      _subset(selected, held_out), fusion_config, svm=svm)
        correct += int(np.sum(predicted == labels[held_out]))
    return correct / len(labels)


def _capped_ks(ks: Iterable[int], num_candidates: int) -> list[int]:
    """Each K capped at the m candidates (more slots would only repeat the whole image), once."""
    capped: list[int] = []
    for k in ks:
        if int(k) != k or k < 1:
            raise ValueError(f"Every K must be a positive integer. Received: K={k!r}")
        k = min(int(k), num_candidates)
        if k not in capped:
            capped.append(k)
    if not capped:
        raise ValueError("ks must hold at least one K. Received: ks=[]")
    return capped


def top_k_sweep(validation: dict, test: dict, region_config: RegionConfig,
                fusion_config: FusionConfig, ks: Iterable[int], seed: int) -> list[dict]:
    """Accuracy of AR + sum, max and concatenation for every K: the paper's Fig. 7.

    Sum and max pooling fit nothing and are measured directly on both parts. The concatenation's
    SVM is fitted on the validation part and tested on the test part, as the evaluation does
    (:func:`affect_tf.evaluate.evaluate_all`); its validation figure is cross-validated inside the
    validation part (:func:`cross_validated_concat`), never in-sample.

    Args:
        validation: the validation part's predictions (see the module docstring).
        test: the test part's predictions.
        region_config: the run's region settings; ``top_k`` is replaced by each K.
        fusion_config: the run's fusion settings (beta, SVM kernel, C, features).
        ks: the Ks; each is capped at m, the candidates per image, and repeats are dropped.
        seed: the SVMs' seed (the run's ``Config.seed``, for the evaluation's own figure) and
            the cross-validation's.

    Returns:
        One row per K, in the order given: ``top_k``, ``alpha``, ``beta``,
        ``validation_ar_sum``, ``test_ar_sum``, ``validation_ar_max``, ``test_ar_max``,
        ``validation_ar_concat_cv`` (5-fold cross-validation) and ``test_ar_concat``.

    Raises:
        ValueError: a K that is not a positive integer, empty ``ks``, or a part without the
            evaluation's keys. (Fewer validation images of a class than folds give NaN in
            ``validation_ar_concat_cv``.)
    """
    _checked_parts(validation, test)
    num_candidates = min(np.shape(validation["candidate_probs"])[1],
                         np.shape(test["candidate_probs"])[1])
    labels = np.asarray(validation["label"])
    # A validation part with fewer images of a class than folds cannot be cross-validated (a
    # tiny run's): its concatenation column is then NaN, the other columns stand.
    can_cross_validate = min(int(np.sum(labels == label)) for label in (0, 1)) >= \
        CROSS_VALIDATION_FOLDS
    rows = []
    for k in _capped_ks(ks, num_candidates):
        regions = dataclasses.replace(region_config, top_k=k).validate()
        selected_validation = evaluate_lib.select(validation, regions, "ar")
        selected_test = evaluate_lib.select(test, regions, "ar")
        on_validation = _sum_and_max(validation, selected_validation, fusion_config)
        on_test = _sum_and_max(test, selected_test, fusion_config)
        svm = evaluate_lib.fit_svm(validation, selected_validation, fusion_config, seed)
        rows.append({
            "top_k": k, "alpha": regions.alpha, "beta": fusion_config.beta,
            "validation_ar_sum": on_validation["sum"], "test_ar_sum": on_test["sum"],
            "validation_ar_max": on_validation["max"], "test_ar_max": on_test["max"],
            "validation_ar_concat_cv": (cross_validated_concat(
                validation, selected_validation, fusion_config, seed)
                if can_cross_validate else float("nan")),
            "test_ar_concat": _accuracy(test["label"], evaluate_lib.fuse(
                "concat", test["global_probs"], selected_test, fusion_config, svm=svm)),
        })
    return rows


def write_csv(rows: Sequence[dict], path: str | pathlib.Path) -> pathlib.Path:
    """Writes sweep rows as CSV (header: the keys in first-seen order), atomically.

    The text goes through :func:`affect_tf.io.atomic_write_text` (temporary file, then
    ``os.replace``), so a reader never sees half a table. Floats are written in full (Python's
    shortest round-trip form). The folder is created if needed.

    Args:
        rows: dicts of the sweep functions (a key missing from a row leaves its cell empty).
        path: the CSV file.

    Returns:
        ``path`` as a :class:`pathlib.Path`.

    Raises:
        ValueError: ``rows`` is empty (a table needs a header).
    """
    if not rows:
        raise ValueError("write_csv needs at least one row. Received: 0 rows")
    columns = list(dict.fromkeys(key for row in rows for key in row))
    buffer = std_io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return io_lib.atomic_write_text(path, buffer.getvalue())


def _column(rows: Sequence[dict], key: str, name: str) -> np.ndarray:
    missing = [index for index, row in enumerate(rows) if key not in row]
    if missing:
        raise ValueError(f"{name} needs {key!r} in every row. Received: rows {missing[:5]} "
                         f"without it (keys {sorted(rows[missing[0]])})")
    return np.asarray([row[key] for row in rows], np.float64)


def plot_alpha_beta(rows: Sequence[dict], path: str | pathlib.Path) -> pathlib.Path:
    """Draws :func:`alpha_beta_sweep`'s validation accuracy as PNG, laid out as Fig. 6.

    Left: accuracy against alpha, one curve per beta; right: against beta, one curve per alpha.

    Args:
        rows: :func:`alpha_beta_sweep`'s rows (``alpha``, ``beta``, ``validation_ar_sum``).
        path: the PNG file (its folder is created).

    Returns:
        ``path`` as a :class:`pathlib.Path`.
    """
    if not rows:
        raise ValueError("plot_alpha_beta needs at least one row. Received: 0 rows")
    alpha = _column(rows, "alpha", "plot_alpha_beta")
    beta = _column(rows, "beta", "plot_alpha_beta")
    accuracy = _column(rows, "validation_ar_sum", "plot_alpha_beta")
    figure, axes = plt.subplots(1, 2, figsize=(11, 4.6), squeeze=False)
    for axis, (along, across, along_name, across_name) in zip(
            axes.flat, ((alpha, beta, "alpha (Eq. 5)", "beta"),
                        (beta, alpha, "beta (Eq. 7)", "alpha"))):
        values = np.unique(across)
        colours = plt.cm.viridis(np.linspace(0.0, 0.9, len(values)))
        for value, colour in zip(values, colours):
            chosen = across == value
            order = np.argsort(along[chosen])
            axis.plot(along[chosen][order], 100 * accuracy[chosen][order], marker="o",
                      markersize=3, color=colour, label=f"{across_name} = {value:g}")
        axis.set_xlabel(along_name)
        axis.set_ylabel("validation accuracy of AR + sum pooling (%)")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7, ncol=2 if len(values) > 6 else 1)
    figure.suptitle(f"Alpha and beta sweep (K = {rows[0].get('top_k', '?')})\n{FIG6_NOTE}",
                    fontsize=9)
    figure.tight_layout()
    return visualize.save_png(figure, path)


# (column, legend, colour, line style) of the Fig. 7 curves: one colour per fusion, solid on the
# validation part, dashed on the test part.
_TOP_K_CURVES = (
    ("validation_ar_sum", "AR + sum, validation", "#377eb8", "-"),
    ("test_ar_sum", "AR + sum, test", "#377eb8", "--"),
    ("validation_ar_max", "AR + max, validation", "#4daf4a", "-"),
    ("test_ar_max", "AR + max, test", "#4daf4a", "--"),
    ("validation_ar_concat_cv", "AR + concat, validation (5-fold CV)", "#e41a1c", "-"),
    ("test_ar_concat", "AR + concat, test (SVM fitted on validation)", "#e41a1c", "--"),
)


def plot_top_k(rows: Sequence[dict], path: str | pathlib.Path) -> pathlib.Path:
    """Draws :func:`top_k_sweep`'s accuracies against K as PNG, laid out as Fig. 7.

    Args:
        rows: :func:`top_k_sweep`'s rows; curves whose column is absent are skipped.
        path: the PNG file (its folder is created).

    Returns:
        ``path`` as a :class:`pathlib.Path`.
    """
    if not rows:
        raise ValueError("plot_top_k needs at least one row. Received: 0 rows")
    ks = _column(rows, "top_k", "plot_top_k")
    order = np.argsort(ks)
    figure, axis = plt.subplots(figsize=(9.5, 4.6))
    for key, label, colour, style in _TOP_K_CURVES:
        if all(key in row for row in rows):
            values = 100 * _column(rows, key, "plot_top_k")
            axis.plot(ks[order], values[order], marker="o", markersize=3, color=colour,
                      linestyle=style, label=label)
    axis.set_xlabel("K, affective regions per image")
    axis.set_ylabel("accuracy (%)")
    axis.set_xticks(ks[order])
    axis.grid(alpha=0.3)
    # Beside the axes: six curves leave no corner free inside them.
    axis.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), handlelength=3)
    first = rows[0]
    axis.set_title(f"K sweep (alpha = {first.get('alpha', '?')}, beta = {first.get('beta', '?')})"
                   f"\n{FIG7_NOTE}", fontsize=9)
    figure.tight_layout()
    return visualize.save_png(figure, path)
