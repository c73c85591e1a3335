"""A self-contained HTML page for the report: the Markdown text, the pictures embedded as base64 PNGs.

Why self-contained: the page is mailed, attached to tickets and opened offline; it must not point at
files beside it or at the network. The converter handles the Markdown subset our template writes
(headings, paragraphs, pipe tables, bullet lists, **bold**, *italic*, line breaks) and escapes the rest, so
text from an LLM cannot inject markup.

Pictures: `overview.png` from the explanation folder when present, and a findings figure drawn here
(three orthogonal slices through the largest part's centre: the scan, the map, the mask outline),
displayed in radiological convention (the patient's right on the viewer's left).
"""

from __future__ import annotations

import base64
import html
import io
import re
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from .probability_figure import probability_figure

CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:1000px;margin:2em auto;
padding:0 1em;color:#1d1d1f;line-height:1.5}
h1{font-size:1.6em;border-bottom:2px solid #ddd;padding-bottom:.3em}h2{font-size:1.25em;margin-top:1.6em}
table{border-collapse:collapse;margin:.6em 0;font-size:.92em}th,td{border:1px solid #ccc;padding:.3em .6em;
text-align:left}th{background:#f3f3f3}figure{margin:1em 0}figure img{max-width:100%;border:1px solid #ddd}
figcaption{color:#555;font-size:.9em}.summary{background:#f7f9fc;border-left:4px solid #2f6fb3;padding:.6em 1em}
footer{color:#666;font-size:.9em;margin-top:2em}
"""


def _inline(text: str) -> str:
    out = html.escape(text, quote=False)
    out = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", out)
    out = re.sub(r"(?<![*\w])\*(?!\s)(.+?)(?<!\s)\*(?![*\w])", r"<em>\1</em>", out)
    return out


def markdown_to_html(md: str) -> str:
    """Our template's Markdown subset -> HTML body fragment (everything escaped first)."""
    lines = md.splitlines()
    out: list[str] = []
    i = 0
    section = ""
    while i < len(lines):
        line = lines[i]
        if not line.strip():
            i += 1
            continue
        m = re.match(r"^(#{1,6})\s+(.*)$", line)
        if m:
            level = len(m.group(1))
            section = m.group(2).strip().lower()
            out.append(f"<h{level}>{_inline(m.group(2))}</h{level}>")
            i += 1
            continue
        if line.strip() == "---":
            out.append("<hr>")
            i += 1
            continue
        if line.lstrip().startswith("|"):
            rows = []
            while i < len(lines) and lines[i].lstrip().startswith("|"):
                rows.append([c.strip() for c in lines[i].strip().strip("|").split("|")])
                i += 1
            body = [r for r in rows if not all(re.fullmatch(r":?-+:?", c) for c in r)]
            out.append("<table>")
            for k, r in enumerate(body):
                tag = "th" if k == 0 else "td"
                out.append("<tr>" + "".join(f"<{tag}>{_inline(c)}</{tag}>" for c in r) + "</tr>")
            out.append("</table>")
            continue
        if line.lstrip().startswith("- "):
            out.append("<ul>")
            while i < len(lines) and lines[i].lstrip().startswith("- "):
                out.append(f"<li>{_inline(lines[i].lstrip()[2:])}</li>")
                i += 1
            out.append("</ul>")
            continue
        para = []
        while i < len(lines) and lines[i].strip() and not re.match(r"^(#|\||- |---)", lines[i].lstrip()):
            para.append(_inline(lines[i].rstrip()) + ("<br>" if lines[i].endswith("  ") else ""))
            i += 1
        cls = ' class="summary"' if section == "summary" else ""
        out.append(f"<p{cls}>" + "\n".join(para) + "</p>")
    return "\n".join(out)


def png_data_uri(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def findings_figure(out_dir: str | Path, findings: dict) -> bytes | None:
    """PNG bytes of three slices through the largest part (scan, map, mask outline); None if not drawable."""
    out_dir = Path(out_dir)
    map_path = out_dir / "map.nii.gz"
    paths = [Path(p) for p in findings["input"]["paths"]]
    if not map_path.exists() or not findings["components"]:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    amap_img = sitk.ReadImage(str(map_path), sitk.sitkFloat32)
    if amap_img.GetDimension() != 3:
        return None
    scan_img = sitk.ReadImage(str(paths[0]), sitk.sitkFloat32) if paths and paths[0].is_file() else None
    if scan_img is not None and scan_img.GetSize() != amap_img.GetSize():
        scan_img = None
    thr = findings["mask"]["threshold"]
    mask_img = sitk.Cast(amap_img >= float(thr), sitk.sitkUInt8) if thr is not None else None
    orient = {k: sitk.DICOMOrient(v, "LPS") for k, v in
              (("map", amap_img), ("scan", scan_img), ("mask", mask_img)) if v is not None}
    amap = sitk.GetArrayFromImage(orient["map"])
    scan = sitk.GetArrayFromImage(orient["scan"]) if "scan" in orient else None
    mask = sitk.GetArrayFromImage(orient["mask"]) > 0 if "mask" in orient else None
    c = findings["components"][0]["centroid_ras_mm"]
    lps = (-c[0], -c[1], c[2])
    x, y, z = (int(round(v)) for v in orient["map"].TransformPhysicalPointToContinuousIndex(lps))
    z = min(max(z, 0), amap.shape[0] - 1)
    y = min(max(y, 0), amap.shape[1] - 1)
    x = min(max(x, 0), amap.shape[2] - 1)
    sp = orient["map"].GetSpacing()
    views = [("axial", lambda a: a[z], sp[1] / sp[0], False),
             ("coronal", lambda a: a[:, y, :], sp[2] / sp[0], True),
             ("sagittal", lambda a: a[:, :, x], sp[2] / sp[1], True)]
    vmax = float(np.percentile(amap[amap > 0], 99.5)) if (amap > 0).any() else 1.0
    fig, axes = plt.subplots(1, 3, figsize=(11, 4), dpi=90)
    for ax, (name, cut, aspect, flip) in zip(axes, views, strict=True):
        def show(a, flip=flip):
            return a[::-1] if flip else a

        if scan is not None:
            s = show(cut(scan))
            lo, hi = np.percentile(scan[scan > 0], [1, 99]) if (scan > 0).any() else (0, 1)
            ax.imshow(s, cmap="gray", vmin=lo, vmax=hi, aspect=aspect, interpolation="nearest")
        m = np.ma.masked_less_equal(show(cut(amap)), 0)
        ax.imshow(m, cmap="hot", alpha=0.55, vmin=0, vmax=vmax, aspect=aspect, interpolation="nearest")
        if mask is not None and show(cut(mask)).any():
            ax.contour(show(cut(mask)).astype(float), levels=[0.5], colors="cyan", linewidths=1.2)
        ax.set_title(name, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
        if name in ("axial", "coronal"):
            ax.text(0.02, 0.5, "R", color="yellow", transform=ax.transAxes, fontsize=10, va="center")
            ax.text(0.95, 0.5, "L", color="yellow", transform=ax.transAxes, fontsize=10, va="center")
    fig.suptitle(f"Largest part: {findings['components'][0]['volume_ml']:.1f} ml, centre x {c[0]:.1f}, "
                 f"y {c[1]:.1f}, z {c[2]:.1f} mm (RAS); cyan = mask, colour = map", fontsize=10)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def render_html(markdown: str, *, out_dir: str | Path, findings: dict, title: str = "Explanation report") -> str:
    """The full page. Pictures are inserted after the summary; missing pictures are simply left out."""
    out_dir = Path(out_dir)
    figures = []
    overview = out_dir / "overview.png"
    if overview.exists():
        figures.append((png_data_uri(overview.read_bytes()), "Overview written by the explanation."))
    try:
        fig = findings_figure(out_dir, findings)
    except (RuntimeError, OSError, ValueError):  # a picture must never cost the report
        fig = None
    if fig:
        figures.append((png_data_uri(fig), "Findings: slices through the centre of the largest part."))
    paths = findings.get("input", {}).get("paths") or []
    try:
        beside = probability_figure(out_dir, paths[0] if paths else None,
                                    label=str((findings.get("prediction") or {}).get("target_label") or ""))
    except (RuntimeError, OSError, ValueError):
        beside = None
    if beside:
        figures.append((png_data_uri(beside), "The model's probability next to the responsibility, same slice."))
    body = markdown_to_html(markdown)
    figs_html = "\n".join(
        f'<figure><img alt="{html.escape(cap)}" src="{uri}"><figcaption>{html.escape(cap)}</figcaption></figure>'
        for uri, cap in figures)
    marker = "</p>"
    pos = body.find('<p class="summary">')
    if pos >= 0 and figs_html:
        end = body.find(marker, pos) + len(marker)
        body = body[:end] + "\n" + figs_html + body[end:]
    elif figs_html:
        body += figs_html
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title><style>{CSS}</style></head>\n<body>\n{body}\n</body></html>\n")
