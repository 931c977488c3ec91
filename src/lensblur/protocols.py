"""The papers' own evaluation tables (``lensblur eval --protocol NAME``).

A protocol fixes which renderers stand for which of a paper's methods, which metrics the paper
reports and the paper's own numbers, and prints our measurement in the shape of the paper's
table with the paper's figures beside it. The paper's figures were measured on the paper's data
(EBB! Val294, the iPhone test set, the Baidu human test set), never on the data at hand: they are
printed for orientation, labelled as the paper's, and are not comparable with ours unless the
data is the paper's (EBB! Val294 for ``dbsi-val294``).

Protocols:
  dbsi-val294  Dutta et al. (DBSI) Table 1: saliency baseline vs the proposed network, PSNR / SSIM /
               LPIPS. "Proposed" is ``dbsi-paper``: the paper's image-only network with the
               paper's inference (run at the training size, output resized back; section 5.1).
               On EBB! the Val294 split is used.
  deeplens     Wang et al. (DeepLens) Table 2 shape: methods as columns, PSNR and SSIM rows. The
               paper's "Ours" includes predicted depth; here every renderer gets the data's
               disparity (true depth for synthetic scenes), so our column measures lens blur +
               guided upsampling only. The paper's baselines (direct regression, Aperture) are
               not implemented; ``scatter`` given true depth stands where the paper puts a
               ray-tracing renderer fed with a depth estimate (MegaDepth + Yang et al.).
  xu           Xu et al. Table 2 shape: methods as columns, PSNR and SSIM rows. "Ours RNN" is
               ``portrait-rnn``; the CRF system (``portrait``) is the paper's ground truth for
               that table and is measured here against the data's ground truth as an extra
               column. The baselines [31], [21] and the CNN are not implemented.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

LPIPS_MISSING = "n/a (no weights)"


@dataclass(frozen=True)
class Method:
    """One column/row of a paper's table: its label in the paper, the renderer that stands for it
    here (None: not implemented) and the paper's reported numbers {metric: text, as printed}."""

    label: str
    renderer: str | None
    paper: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Protocol:
    """A paper's table. metrics: keys of the evaluation summary (psnr, ssim, lpips);
    methods_as_columns: the paper prints methods across and metrics down (True) or the reverse;
    split: the dataset split the paper uses on EBB! (None: any)."""

    name: str
    title: str
    paper_data: str
    metrics: tuple[str, ...]
    methods: tuple[Method, ...]
    methods_as_columns: bool = False
    split: str | None = None
    notes: tuple[str, ...] = ()

    @property
    def renderers(self) -> list[str]:
        """The renderers this protocol runs, in table order."""
        return [m.renderer for m in self.methods if m.renderer]


PROTOCOLS = {
    "dbsi-val294": Protocol(
        "dbsi-val294", "DBSI (Dutta et al. 2021) Table 1", "EBB! Val294", ("psnr", "ssim", "lpips"),
        (Method("Baseline (SCRN)", "saliency-baseline", {"psnr": "22.53", "ssim": "0.8330", "lpips": "0.3251"}),
         Method("Proposed", "dbsi-paper", {"psnr": "23.45", "ssim": "0.8675", "lpips": "0.2463"})),
        split="val294",
        notes=("Baseline: the project's saliency map stands for SCRN (section 5.3); background blurred by a "
               "75x75 Gaussian, blended by Eq. 1.",
               "Proposed: the shipped image-only network (weights/dbsi-image.pt) run at its training size, "
               "output resized back bilinearly (section 5.1).")),
    "deeplens": Protocol(
        "deeplens", "DeepLens (Wang et al. 2018) Table 2", "iPhone test set", ("psnr", "ssim"),
        (Method("Direct Regression", None, {"psnr": "25.84", "ssim": "0.815"}),
         Method("Aperture", None, {"psnr": "26.88", "ssim": "0.844"}),
         Method("MegaDepth + [Yang et al.]", "scatter", {"psnr": "26.67", "ssim": "0.836"}),
         Method("Ours", "deeplens", {"psnr": "28.235", "ssim": "0.908"}),
         Method("naive blend (not in the paper)", "naive")),
        methods_as_columns=True,
        notes=("Every renderer gets the data's disparity: 'Ours' here is DeepLens' lens blur + guided "
               "upsampling given true depth, and scatter (a ray-tracing-like renderer) given true depth "
               "stands for MegaDepth + Yang et al. (a depth estimate); the paper's 'Ours' predicts its depth.",
               "Table 1 (depth MAE) and Table 3 (training with true / predicted / corrupted depth) need "
               "the depth module and checkpoints trained each way; they are not run by this protocol.")),
    "xu": Protocol(
        "xu", "Xu et al. 2018 Table 2", "Baidu human test set (targets rendered by their CRF system)",
        ("psnr", "ssim"),
        (Method("Xu et al. [31]", None, {"psnr": "31.55", "ssim": "0.9235"}),
         Method("Liu et al. [21]", None, {"psnr": "33.55", "ssim": "0.9432"}),
         Method("Ours CNN", None, {"psnr": "37.35", "ssim": "0.9723"}),
         Method("Ours RNN", "portrait-rnn", {"psnr": "40.74", "ssim": "0.9868"}),
         Method("CRF system (the paper's target)", "portrait")),
        methods_as_columns=True,
        notes=("The paper scores the RNN against its CRF system's renders; here both are scored against "
               "the data's ground truth (exact thin lens for synthetic scenes).",)),
}


def get_protocol(name: str) -> Protocol:
    """The protocol called ``name``; InputError listing the known ones for any other name."""
    from lensblur.errors import InputError

    if name not in PROTOCOLS:
        raise InputError(f"unknown protocol {name!r}: choose from {', '.join(PROTOCOLS)}")
    return PROTOCOLS[name]


_TITLES = {"psnr": "PSNR", "ssim": "SSIM", "lpips": "LPIPS"}
_FORMATS = {"psnr": "{:.2f}", "ssim": "{:.4f}", "lpips": "{:.4f}"}


def _ours(protocol: Protocol, summary: list[dict], method: Method, metric: str) -> str:
    if method.renderer is None:
        return "not implemented"
    entry = next((e for e in summary if e["renderer"] == method.renderer), None)
    if entry is None:
        return "not run"
    if metric == "lpips" and "lpips" not in entry:
        return LPIPS_MISSING
    value = entry.get(metric, math.nan)
    return "n/a" if isinstance(value, float) and math.isnan(value) else _FORMATS[metric].format(value)


def _paper(method: Method, metric: str) -> str:
    return method.paper.get(metric, "—")


def table_cells(protocol: Protocol, summary: list[dict], data_label: str) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of the paper's table with our numbers (on ``data_label``) and the paper's.

    summary: :func:`lensblur.evaluate.summarise` output. Methods are rows and each metric gets an
    "ours" and a "paper" column, or (methods_as_columns) methods are columns and each metric gets
    an "ours" and a "paper" row, as the paper prints it.
    """
    ours_tag, paper_tag = "ours", "paper"
    if protocol.methods_as_columns:
        header = ["metric"] + [m.label for m in protocol.methods]
        rows = []
        for metric in protocol.metrics:
            rows.append([f"{_TITLES[metric]}, {ours_tag}"] + [_ours(protocol, summary, m, metric) for m in protocol.methods])
            rows.append([f"{_TITLES[metric]}, {paper_tag}"] + [_paper(m, metric) for m in protocol.methods])
        return header, rows
    header = ["method", "renderer"]
    for metric in protocol.metrics:
        header += [f"{_TITLES[metric]} {ours_tag}", f"{_TITLES[metric]} {paper_tag}"]
    rows = []
    for method in protocol.methods:
        row = [method.label, method.renderer or "—"]
        for metric in protocol.metrics:
            row += [_ours(protocol, summary, method, metric), _paper(method, metric)]
        rows.append(row)
    return header, rows


def format_text(protocol: Protocol, summary: list[dict], data_label: str) -> str:
    """The table as aligned plain text, titled, with the protocol's notes and the comparability
    warning below it."""
    header, rows = table_cells(protocol, summary, data_label)
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
    lines = [f"{protocol.title}, in the paper's shape",
             f"ours: {data_label}; paper: as reported in the paper, on {protocol.paper_data}"]
    lines += ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
              for r in [header] + rows]
    lines += [f"note: {n}" for n in _notes(protocol, data_label)]
    return "\n".join(lines)


def format_markdown(protocol: Protocol, summary: list[dict], data_label: str) -> str:
    """The same table as GitHub markdown, with the notes as a list."""
    header, rows = table_cells(protocol, summary, data_label)
    lines = [f"### {protocol.title}, in the paper's shape", "",
             f"ours: {data_label}; paper: as reported in the paper, on {protocol.paper_data}", "",
             "| " + " | ".join(header) + " |", "|" + "|".join(["---"] * len(header)) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    lines += [""] + [f"- {n}" for n in _notes(protocol, data_label)]
    return "\n".join(lines) + "\n"


def _notes(protocol: Protocol, data_label: str) -> list[str]:
    comparable = protocol.split == "val294" and data_label.startswith("EBB! Val294")
    warning = (f"the paper's numbers are the paper's own, measured on {protocol.paper_data}"
               + ("" if comparable else f"; they are not comparable with ours on {data_label}"))
    return [warning, *protocol.notes]


def paper_split(protocol: Protocol, layout: str, split: str) -> str:
    """The split to evaluate: the paper's (e.g. val294) on EBB! when the user asked for "all"."""
    return protocol.split if protocol.split and layout == "ebb" and split == "all" else split


def data_label(layout: str, split: str, count: int) -> str:
    """How the table names the data: e.g. "EBB! Val294, 294 images" or "synth data, 16 images"."""
    name = "EBB! " + ("Val294" if split == "val294" else split) if layout == "ebb" else f"{layout} data"
    return f"{name}, {count} images"


def run_protocol(name: str, folder, *, layout: str = "auto", split: str = "all", limit: int | None = None,
                 lpips_weights: str | None = None, client=None, **sample_options):
    """Python API of ``lensblur eval --protocol``: evaluate protocol ``name`` on a dataset folder.

    On EBB! the paper's split is used when ``split`` is "all". sample_options go to
    :func:`lensblur.evaluate.sample_loaders` (blur, focus, disparity_dir). Returns (protocol,
    results, data label); print it with :func:`format_text`. InputError for an unknown protocol
    or an unreadable dataset.
    """
    from lensblur import evaluate

    protocol = get_protocol(name)
    layout = evaluate.detect_layout(folder) if layout == "auto" else layout
    split = paper_split(protocol, layout, split)
    loaders = evaluate.sample_loaders(folder, layout, split=split, limit=limit, **sample_options)
    results, _ = evaluate.evaluate(loaders, protocol.renderers, sheet_count=0, lpips_weights=lpips_weights,
                                   client=client)
    results.layout = layout
    return protocol, results, data_label(layout, split, len(loaders))
