"""The report's figures, drawn on matplotlib `Figure` objects (Agg canvas, no pyplot): importing this module
selects no backend and draws nothing on screen, so it is safe inside Ray workers and on headless machines."""

from __future__ import annotations

from collections import defaultdict
from itertools import cycle
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from pix2point.io.classify_table import ClassifyEpoch, ClassifyRun
from pix2point.io.finetune_table import EpochRecord, RunResult

DPI = 120
LINE_STYLES = ("-", "--", ":", "-.")


def plot_pretrain_loss(step: np.ndarray, loss: np.ndarray, path: Path) -> Path:
    """PPKT's pretraining loss (InfoNCE) per step."""
    return plot_loss_terms(step, {"InfoNCE loss": loss}, path)


def plot_loss_terms(step: np.ndarray, terms: dict[str, np.ndarray], path: Path, title: str = "Pretraining loss") -> Path:
    """One line per named loss term (e.g. I2P-MAE's Chamfer, 2D feature MSE and their sum) against the step."""
    figure = Figure(figsize=(6, 4))
    axes = figure.subplots()
    for name, values in terms.items():
        axes.plot(step, values, linewidth=1, label=name)
    axes.set(xlabel="step", ylabel="loss" if len(terms) > 1 else next(iter(terms)), title=title)
    _whole_numbers(axes.xaxis)
    if len(terms) > 1:
        axes.legend(fontsize="small")
    axes.grid(alpha=0.3)
    return _save(figure, path)


def plot_validation_curves(history: list[EpochRecord], runs: list[RunResult], path: Path) -> Path:
    """Validation mIoU per epoch of every finetune run: colour = init, line style = label fraction."""
    by_name = {run.run: run for run in runs}
    unknown = sorted({record.run for record in history} - by_name.keys())
    if unknown:
        raise ValueError(f"the finetune history has runs the runs table lacks: {unknown[:5]}")
    colour = _palette(sorted({run.init for run in runs}))
    style = dict(zip(sorted({run.label_fraction for run in runs}), cycle(LINE_STYLES)))
    figure = Figure(figsize=(7, 4.5))
    axes = figure.subplots()
    for name, records in _records_by_run(history).items():
        run = by_name[name]
        epochs, miou = zip(*sorted((record.epoch, record.val_miou) for record in records))
        axes.plot(epochs, 100 * np.asarray(miou), color=colour[run.init], linestyle=style[run.label_fraction], alpha=0.8,
                  linewidth=1.2)
    handles = [Line2D([], [], color=c, label=init) for init, c in colour.items()]
    handles += [Line2D([], [], color="grey", linestyle=s, label=f"labels {f:g}") for f, s in style.items()]
    axes.legend(handles=handles, fontsize="small")
    axes.set(xlabel="epoch", ylabel="validation mIoU %", title="Finetuning: validation mIoU per epoch")
    _whole_numbers(axes.xaxis)
    axes.grid(alpha=0.3)
    return _save(figure, path)


def plot_confusion(confusion: np.ndarray, class_names: list[str], title: str, path: Path) -> Path:
    """Row-normalised confusion in percent (each true class sums to 100, so rare classes stay visible); counts in the title.
    Classes neither true nor predicted are left out, as they are from the mIoU."""
    counts = np.asarray(confusion, np.float64)
    seen = (counts.sum(axis=0) + counts.sum(axis=1)) > 0
    counts, names = counts[np.ix_(seen, seen)], [name for name, keep in zip(class_names, seen) if keep]
    row_totals = counts.sum(axis=1, keepdims=True)
    recall = np.divide(counts, row_totals, out=np.zeros_like(counts), where=row_totals > 0)
    size = 2.5 + 0.4 * len(names)
    figure = Figure(figsize=(size + 1, size))
    axes = figure.subplots()
    image = axes.imshow(100 * recall, cmap="Blues", vmin=0, vmax=100)
    figure.colorbar(image, ax=axes, fraction=0.046, label="% of the true class")
    ticks = np.arange(len(names))
    axes.set_xticks(ticks, names, rotation=60, ha="right", fontsize="small")
    axes.set_yticks(ticks, names, fontsize="small")
    axes.set(xlabel="predicted", ylabel="true", title=f"{title} ({int(counts.sum()):,} points)")
    figure.tight_layout()
    return _save(figure, path)


def plot_tsne(embedding: np.ndarray, labels: np.ndarray, class_names: list[str], path: Path) -> Path:
    figure = Figure(figsize=(7, 6))
    axes = figure.subplots()
    present = np.unique(labels)
    colour = _palette([class_names[label] for label in present])  # only the classes shown, for distinct colours
    for label in present:
        here = labels == label
        name = class_names[label]
        axes.scatter(embedding[here, 0], embedding[here, 1], s=4, color=colour[name], label=f"{name} ({here.sum()})")
    axes.legend(markerscale=3, fontsize="small", loc="best")
    axes.set(title="t-SNE of pretrained point features (before finetuning)", xticks=[], yticks=[])
    return _save(figure, path)


def plot_accuracy_curves(history: list[ClassifyEpoch], runs: list[ClassifyRun], path: Path) -> Path:
    """Classification test accuracy per epoch, mean over seeds: one panel per shot count, one line per init/FIP."""
    in_order = sorted(runs, key=lambda run: np.inf if run.shots is None else run.shots)
    return plot_accuracy_panels(history, {run.run: (f"shots {'all' if run.shots is None else run.shots}",
                                                     f"{run.init}/{run.fip}") for run in in_order}, path)


def plot_accuracy_panels(history: list[ClassifyEpoch], labels: dict[str, tuple[str, str]], path: Path) -> Path:
    """Test accuracy per epoch, `labels[run]` = (panel, line): one panel per panel label (in the order they
    first appear in `labels`), one line per line label, each point the mean over that line's runs."""
    curves: dict[tuple[str, str], dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for record in history:
        curves[labels[record.run]][record.epoch].append(record.test_accuracy)
    panel_names = list(dict.fromkeys(panel for panel, _ in labels.values()))
    colour = _palette(sorted({line for _, line in labels.values()}))
    figure = Figure(figsize=(3.6 * len(panel_names) + 1, 3.6))
    panels = np.atleast_1d(figure.subplots(1, len(panel_names), sharey=True))
    for axes, panel in zip(panels, panel_names):
        for line, c in colour.items():
            if epochs := curves.get((panel, line)):
                x = sorted(epochs)
                axes.plot(x, [100 * np.mean(epochs[epoch]) for epoch in x], color=c, marker=".", linewidth=1.2)
        axes.set(title=panel, xlabel="epoch")
        _whole_numbers(axes.xaxis)
        axes.grid(alpha=0.3)
    panels[0].set_ylabel("test accuracy %")
    panels[-1].legend(handles=[Line2D([], [], color=c, label=v) for v, c in colour.items()], fontsize="small")
    figure.tight_layout()
    return _save(figure, path)


def _whole_numbers(axis) -> None:
    """Ticks at whole numbers only (epochs, steps), even when the axis spans less than two of them (a single
    epoch: matplotlib's default, and MaxNLocator's integer mode below min_n_ticks, label 0.95, 1.00, 1.05)."""
    axis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))


def _records_by_run(history: list[EpochRecord]) -> dict[str, list[EpochRecord]]:
    grouped: dict[str, list[EpochRecord]] = defaultdict(list)
    for record in history:
        grouped[record.run].append(record)
    return grouped


def _palette(names: list[str]) -> dict[str, tuple[float, ...]]:
    colours = matplotlib.colormaps["tab10" if len(names) <= 10 else "tab20"].colors
    return dict(zip(names, cycle(colours)))


def _save(figure: Figure, path: Path) -> Path:
    figure.savefig(path, dpi=DPI)
    return path
