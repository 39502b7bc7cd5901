"""Stream reports as files: JSON (everything), DET and precision/recall PNGs, and one
self-contained HTML page (plots inlined) that can be mailed or attached to a pull request."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

import numpy as np

from kwspot.fileio import atomic_write_text, save_figure


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_det(report: dict[str, Any], path: Path, others: dict[str, dict[str, Any]] | None = None
             ) -> None:
    """FRR against FA/h (log x): overall, per keyword faint; other reports for comparison."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 5))
    floor = 0.5 / report["hours"]  # zero false alarms is drawn at half of one per stream
    for k in report["keywords"]:
        fa = [max(r["per_keyword"][k]["fa_per_hour"], floor) for r in report["sweep"]]
        frr = [r["per_keyword"][k]["frr"] * 100 for r in report["sweep"]]
        ax.plot(fa, frr, lw=0.8, alpha=0.35)
    series = {"this model": report, **(others or {})}
    for name, rep in series.items():
        fa = [max(r["fa_per_hour"], floor) for r in rep["sweep"]]
        ax.plot(fa, [r["frr"] * 100 for r in rep["sweep"]], lw=2.2, label=f"{name} (all)")
    for target in (0.5, 1, 5):
        ax.axvline(target, color="grey", ls=":", lw=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("false alarms per hour (zero drawn at the left edge)")
    ax.set_ylabel("false reject rate %")
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    ax.set_title(f"DET on {report['hours']:.2f} h of streams (faint: per keyword)")
    fig.tight_layout()
    save_figure(fig, path, dpi=110)
    plt.close(fig)


def plot_precision_recall(report: dict[str, Any], path: Path) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    t = np.array([r["threshold"] for r in report["sweep"]])
    x = -np.log10(np.maximum(1 - t, 1e-6))  # spreads out the thresholds near 1
    ax.plot(x, [r["recall"] for r in report["sweep"]], label="recall", lw=2)
    ax.plot(x, [r["precision"] for r in report["sweep"]], label="precision", lw=2)
    ticks = [0.5, 0.9, 0.99, 0.999, 0.9999]
    ax.set_xticks([-np.log10(1 - v) for v in ticks], [str(v) for v in ticks])
    ax.set_xlabel("threshold (confidence)")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title("precision and recall against the threshold")
    fig.tight_layout()
    save_figure(fig, path, dpi=110)
    plt.close(fig)


def _fmt(value: Any, pct: bool = False) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "–"
    return f"{value * 100:.1f} %" if pct else f"{value:.2f}"


def _seconds(latency: dict[str, Any]) -> str:
    if latency.get("median") is None:
        return "–"
    return f"{latency['median']:.2f} / {latency['p90']:.2f} s"


def write_stream_report(report: dict[str, Any], out_dir: str | Path,
                        others: dict[str, dict[str, Any]] | None = None) -> Path:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "report.json", json.dumps(report, indent=1) + "\n")
    plot_det(report, out / "det.png", others)
    plot_precision_recall(report, out / "precision_recall.png")
    atomic_write_text(out / "report.html", render_html(report, out))
    return out / "report.html"


def _img(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img src="data:image/png;base64,{data}" alt="{path.stem}">'


def render_html(report: dict[str, Any], out: Path) -> str:
    esc = html.escape
    ops = report["operating_points"]
    d = report["default_thresholds"]
    rows = []
    for k in ["overall", *report["keywords"]]:
        points = ops["overall"] if k == "overall" else ops["per_keyword"][k]
        cells = "".join(f"<td>{_fmt(p['frr'], True) if p else '–'}</td>"
                        for p in points.values())
        rows.append(f"<tr><th>{esc(k)}</th>{cells}</tr>")
    head = "".join(f"<th>FRR @ {t} FA/h</th>" for t in ops["overall"])
    per_kw = "".join(
        f"<tr><th>{esc(k)}</th><td>{d['thresholds'][k]:.5g}</td>"
        f"<td>{_fmt(v['frr'], True)}</td><td>{v['fa_per_hour']:.2f}</td>"
        f"<td>{v['hits']}/{v['truth']}</td><td>{_fmt(v['precision'], True)}</td>"
        f"<td>{_seconds(v['latency_s'])}</td></tr>" for k, v in d["per_keyword"].items())
    sources = "".join(f"<tr><td>{esc(s)}</td><td>{n}</td></tr>"
                      for s, n in d["false_alarms_by_source"].items())
    streams = "".join(f"<li>{esc(s['path'])}: {s['duration_s'] / 60:.1f} min, "
                      f"{s['keywords']} keywords</li>" for s in report["streams"])
    lat = d["latency_s"]
    snr = "".join(f"<tr><td>{esc(band)}</td><td>{_fmt(v['frr'], True)}</td>"
                  f"<td>{v['truth']}</td></tr>" for band, v in d["frr_by_snr"].items())
    return f"""<!doctype html><html><head><meta charset="utf-8">
<title>kwspot stream report</title>
<style>body{{font:14px sans-serif;max-width:60em;margin:2em auto}}table{{border-collapse:
collapse}}td,th{{border:1px solid #ccc;padding:2px 8px;text-align:right}}img{{max-width:100%}}
</style></head><body>
<h1>Stream evaluation: {esc(report['model'])}</h1>
<p>{report['hours']:.2f} h of audio; a hit is an event of the right keyword between the start
of a true keyword and {report['tolerance_s']} s after its end; every other event is a false
alarm. Detector: hop {report['detector']['hop_ms']} ms, smoothing
{report['detector']['smooth_ms']} ms, refractory {report['detector']['refractory_ms']} ms.</p>
<ul>{streams}</ul>
<h2>False rejects at a false-alarm budget (one threshold for all keywords, swept)</h2>
<table><tr><th></th>{head}</tr>{''.join(rows)}</table>
<h2>At the model's own thresholds</h2>
<p>FRR {_fmt(d['frr'], True)}, {d['fa_per_hour']:.2f} false alarms per hour, precision
{_fmt(d['precision'], True)}; latency (event minus keyword end) median {_fmt(lat['median'])}
s, p90 {_fmt(lat['p90'])} s.</p>
<table><tr><th>keyword</th><th>threshold</th><th>FRR</th><th>FA/h</th><th>hits</th>
<th>precision</th><th>latency median / p90</th></tr>
{per_kw}</table>
<h3>What the false alarms were said over</h3><table>{sources}</table>
<h3>False rejects by signal-to-noise ratio</h3><table>{snr}</table>
<h2>DET</h2>{_img(out / 'det.png')}
<h2>Precision and recall by confidence</h2>{_img(out / 'precision_recall.png')}
</body></html>
"""
