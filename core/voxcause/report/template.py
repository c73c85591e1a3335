"""The deterministic report: findings -> Markdown, one fixed template, no wording that the numbers do not carry.

Rules the template keeps (the guard checks LLM texts against the same findings):
- every number printed is a findings value, rounded (ml to 0.1, fractions as percentages to 0.1,
  scores to 0.01, coordinates to 0.1 mm), so the same findings always give the same text;
- interpretive words come from stated cut-offs only: a counterfactual drop of the score (delta_drop) of
  at least 0.5 is "strongly", 0.2-0.5 "partly", below 0.2 "does not depend on this region alone";
  a region-only score (delta_focus/p_only) of at least 0.5 "suffices";
- the text describes what the *model* relies on; it never states a diagnosis.
"""

from __future__ import annotations

from pathlib import Path

STRONG_DROP, PARTIAL_DROP, SUFFICIENT_FOCUS = 0.5, 0.2, 0.5
DISCLAIMER = (
    "This report describes which parts of the image the model's output depends on. It is not a diagnosis "
    "and does not say whether the model is right."
)


def _pct(fraction: float | None) -> str:
    return "n/a" if fraction is None else f"{100 * float(fraction):.1f}%"


def _num(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{float(value):.{digits}f}"


def _xyz(point: list[float] | None) -> str:
    if not point:
        return "n/a"
    axes = "xyz"
    return ", ".join(f"{axes[i]} {float(v):.1f}" for i, v in enumerate(point)) + " mm"


def _list_words(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def atlas_display(name: str | None) -> str:
    """'harvard-oxford' -> 'Harvard-Oxford'; a user atlas keeps its file name."""
    return "Harvard-Oxford" if name == "harvard-oxford" else str(name)


def target_phrase(findings: dict) -> str:
    pred = findings.get("prediction", {})
    label, index = pred.get("target_label"), pred.get("target_index")
    if label and index is not None:
        return f"{label} (class {index})"
    return str(label if label is not None else f"class {index}")


def narrative(findings: dict) -> str:
    """The prose summary (the part an LLM may reword); a few sentences, numbers from `findings` only."""
    pred, mask, expl = findings["prediction"], findings["mask"], findings["explanation"]
    comps, regions, atlas = findings["components"], findings["regions"], findings["atlas"]
    s = []
    score = pred.get("score")
    s.append(f"The model gives {target_phrase(findings)} a score of {_num(score)}."
             if score is not None else f"The explained target is {target_phrase(findings)}.")
    verdict = (findings.get("certificate") or {}).get("verdict")
    if verdict == "fail":
        s.append("The explanation failed its certificate: the model does not confirm it, so the region below is "
                 "what the map shows, not an established cause.")
    elif verdict == "weak":
        s.append("The explanation's certificate is weak: the model confirms it only in part.")
    if mask["voxels"] == 0:
        s.append("The attribution map has no distinct peak inside the image, so no region is reported.")
        return " ".join(s)
    parts = ("one connected region" if mask["n_components"] == 1
             else f"{mask['n_components']} separate parts")
    s.append(f"The {expl['method']} map's responsible region (its voxels above the adaptive threshold) is {parts} "
             f"of {mask['volume_ml']:.1f} ml ({_pct(mask['fraction_of_foreground'])} of the imaged foreground), "
             f"which holds {_pct(mask['attribution_fraction'])} of the positive attribution.")
    sufficient = (expl.get("mask_sizes") or {}).get("sufficient")
    if sufficient:  # the explanation itself, as explanation.seg.nrrd and the overview hold it
        size = f"{sufficient['ml']:.2f} ml" if "ml" in sufficient else f"{sufficient.get('mm2', 0):.1f} mm²"
        s.append(f"The smallest part of the image that keeps the decision on its own (the sufficient explanation) "
                 f"is {size} ({sufficient['image_voxels']:,} image voxels).")
    if comps:
        big = comps[0]
        where = big.get("centroid_mni_ras_mm") or big["centroid_ras_mm"]
        space = "MNI, RAS" if big.get("centroid_mni_ras_mm") else "RAS"
        lead = "Its centre" if mask["n_components"] == 1 else f"The largest part ({big['volume_ml']:.1f} ml) is centred"
        verb = "lies at" if mask["n_components"] == 1 else "at"
        s.append(f"{lead} {verb} {_xyz(where)} ({space}).")
    if regions:
        top = regions[:3]
        named = _list_words([f"{r['name']} ({_pct(r['fraction_of_mask'])} of the found region)" for r in top])
        how = "lies mainly in" if top[0]["fraction_of_mask"] >= 0.5 else "overlaps most with"
        s.append(f"By the {atlas_display(atlas['name'])} atlas it {how} the {named}.")
        sides = sorted({r["hemisphere"] for r in regions} - {"unknown"})
        if sides == ["left"] or sides == ["right"]:
            s.append(f"All named regions are in the {sides[0]} hemisphere.")
        elif {"left", "right"} <= set(sides):
            s.append("Named regions lie in both hemispheres.")
        if mask.get("unlabelled_fraction"):
            s.append(f"{_pct(mask['unlabelled_fraction'])} of the region lies outside the atlas's labelled "
                     "grey-matter structures (white matter, fluid or outside the brain).")
    elif atlas.get("skipped_reason") and atlas.get("name"):
        s.append(f"No anatomical names are given: {atlas['skipped_reason']}.")
    cf = findings.get("counterfactual") or {}
    if "delta_drop" in cf:
        d = float(cf["delta_drop"])
        if d >= STRONG_DROP:
            verdict = "the decision depends strongly on this region"
        elif d >= PARTIAL_DROP:
            verdict = "the decision depends partly on this region"
        else:
            verdict = "the decision does not depend on this region alone"
        line = f"Removing the region changes the score by {_num(d)}"
        if "p_orig" in cf and "p_remove" in cf:
            line = f"Removing the region lowers the score from {_num(cf['p_orig'])} to {_num(cf['p_remove'])}"
        s.append(f"{line}: {verdict}.")
    focus = cf.get("p_only", cf.get("delta_focus"))
    if focus is not None:
        if float(focus) >= SUFFICIENT_FOCUS:
            s.append(f"The region alone keeps a score of {_num(focus)}, so it suffices for the decision.")
        else:
            s.append(f"The region alone gives a score of {_num(focus)}, so it does not suffice on its own.")
    if mask.get("dice_reference") is not None:
        s.append(f"Its overlap with the reference mask is a Dice of {_num(mask['dice_reference'])}.")
    return " ".join(s)


def _regions_table(findings: dict) -> list[str]:
    rows = ["| Region | Hemisphere | Share of mask | Share of region | Share of attribution | Volume in mask (ml) |",
            "|---|---|---|---|---|---|"]
    for r in findings["regions"]:
        rows.append(f"| {r['name']} | {r['hemisphere']} | {_pct(r['fraction_of_mask'])} | "
                    f"{_pct(r['fraction_of_region'])} | {_pct(r['attribution_fraction'])} | "
                    f"{r['volume_in_mask_ml']:.1f} |")
    return rows


def _components_table(findings: dict) -> list[str]:
    mni = any("centroid_mni_ras_mm" in c for c in findings["components"])
    head = "| Part | Volume (ml) | Centre, RAS (mm) | Peak, RAS (mm) | Share of attribution |"
    sep = "|---|---|---|---|---|"
    if mni:
        head += " Centre, MNI RAS (mm) |"
        sep += "---|"
    rows = [head, sep]
    for c in findings["components"]:
        row = (f"| {c['id']} | {c['volume_ml']:.1f} | {_xyz(c['centroid_ras_mm'])} | {_xyz(c['peak_ras_mm'])} | "
               f"{_pct(c['attribution_fraction'])} |")
        if mni:
            row += f" {_xyz(c.get('centroid_mni_ras_mm'))} |"
        rows.append(row)
    return rows


def _method_lines(findings: dict) -> list[str]:
    mask, expl, atlas = findings["mask"], findings["explanation"], findings["atlas"]
    lines = []
    passes, secs, device = expl.get("forward_passes"), expl.get("seconds"), expl.get("device")
    cost = ", ".join(x for x in (
        f"{passes} forward passes" if passes is not None else "",
        f"{float(secs):.1f} s" if secs is not None else "",
        f"on {device}" if device else "") if x)
    lines.append(f"- Explanation: {expl['method']}" + (f" ({cost})." if cost else "."))
    if mask["percentile"] is not None:
        lines.append(f"- Mask: map values at or above the {mask['percentile']:g}th percentile inside the foreground "
                     f"(threshold {mask['threshold']:.4g}; rule: {mask['rule'].replace('_', ' ')}), "
                     "specks removed.")
    else:
        lines.append("- Mask: none (the map is flat).")
    if atlas.get("name"):
        reg = atlas.get("registration") or {}
        if reg.get("performed"):
            how = (f"affine registration to MNI152 (quality {reg.get('quality')}, NCC {_num(reg.get('ncc'))}, "
                   f"{_num(reg.get('seconds'), 1)} s)")
        elif reg.get("quality") == "identity":
            how = f"the image was already in MNI space (NCC {_num(reg.get('ncc'))} without registration)"
        else:
            how = reg.get("message", "no registration")
        used = "" if atlas.get("used") else f" Not used: {atlas.get('skipped_reason')}."
        lines.append(f"- Atlas: {atlas_display(atlas['name'])}; {how}.{used}")
        if atlas.get("licence"):
            lines.append(f"- Atlas licence: {atlas['licence']}")
    lines.append("- Coordinates: millimetres, RAS (x to the right, y anterior, z superior).")
    return lines


CERTIFICATE_HEADLINES = {
    "pass": "**Certificate: pass.** The model confirms the explanation",
    "weak": "**Certificate: weak.** Read the explanation with care",
    "fail": "**Certificate: FAIL. Do not read this map as the cause of the model's decision**",
}


def _certificate_lines(certificate: dict | None) -> list[str]:
    """The certificate section: its verdict first, in words, then the checks the model was put to."""
    if not certificate:
        return ["## Can this explanation be trusted?", "", "No certificate was recorded for this explanation.", ""]
    lines = ["## Can this explanation be trusted?", "",
             f"{CERTIFICATE_HEADLINES[certificate['verdict']]}: {certificate['reason']}.", "",
             "| Check | Value | Threshold | Passed |", "|---|---|---|---|"]
    for check in certificate["checks"]:
        lines.append(f"| {check['name'].replace('_', ' ')} | {_num(check.get('value'))} | "
                     f"{_num(check.get('threshold'))} | {'yes' if check['passed'] else 'no'} |")
    return [*lines, ""]


def _sanity_lines(sanity: dict | None) -> list[str]:
    """The randomisation check, when `voxcause sanity` ran: does the map change when the model is destroyed?"""
    if not sanity:
        return []
    lines = ["## Does the map depend on the model?", "",
             f"**Sanity check: {sanity['verdict']}** — {sanity['reason']}.", "",
             "| Layers randomised | Rank correlation | SSIM |", "|---|---|---|"]
    for step in sanity["steps"]:
        lines.append(f"| {100 * step['randomized']:.0f}% | {_num(step['rank_correlation'])} | "
                     f"{_num(step['ssim'])} |")
    return [*lines, ""]


def render_markdown(findings: dict, *, summary_text: str | None = None, summary_note: str | None = None,
                    text_stats: dict | None = None) -> str:
    """The whole report as Markdown. `summary_text` replaces the template narrative (a checked LLM text);
    `summary_note` says where it came from; `text_stats` ({name: stats}) adds the text-statistics table."""
    inputs = [Path(p).name for p in findings["input"]["paths"]] or ["(not recorded)"]
    model = findings.get("model", {}).get("name") or "(not recorded)"
    out = ["# Explanation report", "",
           f"**Input:** {', '.join(inputs)}  ",
           f"**Model:** {model}  ",
           f"**Explained target:** {target_phrase(findings)}  ",
           f"**Method:** {findings['explanation']['method']}", "",
           "## Summary", "", summary_text if summary_text is not None else narrative(findings), ""]
    if summary_note:
        out += [f"*{summary_note}*", ""]
    out += _certificate_lines(findings.get("certificate"))
    out += _sanity_lines(findings.get("sanity"))
    if findings["components"]:
        out += ["## Region found by the explanation", ""] + _components_table(findings) + [""]
    if findings["regions"]:
        title = f"## Anatomical regions ({atlas_display(findings['atlas']['name'])} atlas)"
        out += [title, ""] + _regions_table(findings) + [""]
    cf = findings.get("counterfactual")
    if cf:
        out += ["## Counterfactual check", "",
                "| Score on the image | Region removed | Region only | Drop | Focus |", "|---|---|---|---|---|",
                f"| {_num(cf.get('p_orig'))} | {_num(cf.get('p_remove'))} | {_num(cf.get('p_only'))} | "
                f"{_num(cf.get('delta_drop'))} | {_num(cf.get('delta_focus'))} |", ""]
    out += ["## How this was computed", ""] + _method_lines(findings) + [""]
    if findings["warnings"]:
        out += ["## Warnings", ""] + [f"- {w}" for w in findings["warnings"]] + [""]
    if text_stats:
        out += ["## Text statistics", "",
                "| Text | Words | Sentences | Type-token ratio | MTLD | Flesch reading ease | FK grade |",
                "|---|---|---|---|---|---|---|"]
        for name, st in text_stats.items():
            out.append(f"| {name} | {st['words']} | {st['sentences']} | {st['type_token_ratio']:.2f} | "
                       f"{st['mtld']:.1f} | {st['flesch_reading_ease']:.1f} | {st['flesch_kincaid_grade']:.1f} |")
        out.append("")
    out += ["---", "", f"*{DISCLAIMER}*", ""]
    return "\n".join(out)
