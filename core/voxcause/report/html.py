"""A self-contained HTML page for the report: the Markdown text, the pictures embedded as base64 PNGs.

Why self-contained: the page is mailed, attached to tickets and opened offline; it must not point at
files beside it or at the network. The converter handles the Markdown subset our template writes
(headings, paragraphs, pipe tables, bullet lists, **bold**, *italic*, line breaks) and escapes the rest, so
text from an LLM cannot inject markup.

Pictures: `overview.png` from the explanation folder when present, and a findings figure drawn here
(three orthogonal slices through the largest part's centre: the scan's shown channel, the map, the mask outline),
in overview.png's radiological convention with the patient's directions marked (`voxcause.orientation`).
"""

from __future__ import annotations

import base64
import html
import io
import re
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..orientation import axis_letters, draw_markers, placement
from ..overlays import HEAT, HEAT_ALPHA
from .probability_figure import probability_figure, shown_scan

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
    """PNG bytes of three slices through the largest part (scan, map, mask outline); None if not drawable.

    The slices follow overview.png's convention (`voxcause.orientation`: radiological, R on the viewer's left,
    the patient's directions at every edge, whatever the file's orientation) and name the shown channel."""
    from ..render import views, window

    out_dir = Path(out_dir)
    map_path = out_dir / "map.nii.gz"
    if not map_path.exists() or not findings["components"]:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    map_image = sitk.ReadImage(str(map_path), sitk.sitkFloat32)
    if map_image.GetDimension() != 3:
        return None
    values = sitk.GetArrayFromImage(map_image)
    scan, channel = shown_scan([Path(p) for p in findings["input"]["paths"]], values)
    threshold = findings["mask"]["threshold"]
    mask = values >= float(threshold) if threshold is not None else None
    c = findings["components"][0]["centroid_ras_mm"]
    index = map_image.TransformPhysicalPointToContinuousIndex((-c[0], -c[1], c[2]))  # RAS -> LPS
    centre = tuple(min(max(int(round(i)), 0), size - 1) for i, size in zip(index[::-1], values.shape, strict=True))
    spacing = tuple(map_image.GetSpacing()[::-1])
    letters = axis_letters(map_image.GetDirection(), 3)
    vmax = float(np.percentile(values[values > 0], 99.5)) if (values > 0).any() else 1.0
    low, high = window(scan[scan > 0] if scan is not None and (scan > 0).any() else np.zeros(1))
    fig, axes = plt.subplots(1, 3, figsize=(11, 4), dpi=90)
    for ax, (name, cut, _) in zip(axes, views(values.shape, centre, spacing), strict=True):
        rows, columns = (k for k, part in enumerate(cut) if isinstance(part, slice))
        place = placement(name, letters[rows], letters[columns])
        aspect = place.aspect(spacing[rows], spacing[columns])
        if scan is not None:
            ax.imshow(place.apply(scan[cut]), cmap="gray", vmin=low, vmax=high, aspect=aspect, origin="lower",
                      interpolation="nearest")
        shown = np.ma.masked_less_equal(place.apply(values[cut]), 0)
        ax.imshow(shown, cmap=HEAT, alpha=HEAT_ALPHA, vmin=0, vmax=vmax, aspect=aspect, origin="lower",
                  interpolation="nearest")
        if mask is not None and mask[cut].any():
            ax.contour(place.apply(mask[cut]).astype(float), levels=[0.5], colors="cyan", linewidths=1.2)
        ax.set_title(f"{name} ({channel})" if channel else name, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
        draw_markers(ax, place)
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
        beside = probability_figure(out_dir, paths,
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
