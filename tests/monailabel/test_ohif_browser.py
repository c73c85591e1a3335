"""OHIF, the web viewer MONAI Label serves at /ohif/, in a real browser: what an annotator sees (issue 25).

A private Orthanc holds the sample glioma as a DICOM study; the MONAI Label server runs over it; headless Debian
Chromium, driven by Playwright's Python API (.ci/setup_browser.sh installs both), opens the study in MONAI
Label's OHIF and asserts from the page:

- **MONAI Label panel**: connected to the server, ``segmentation`` and ``explain_rex`` run from the panel's
  Auto-Segmentation list; the requests the panel sends succeed, the reply's labels are mapped onto the panel's
  segments, and the overlay paints the axial slice where the tumour is (pixels read from screenshots: the painted
  pixels' centre lies on the tumour's, relative to the head).
- **PACS route**: the explain request stored its DICOM SEG and Parametric Maps in the study; OHIF's viewer lists
  them, loads the SEG with the explanation's named segments (``sufficient explanation``, ``responsibility level
  1..5``) and paints them. A Parametric Map is recognised (``PMAP``); loading it as a heat overlay stops in OHIF's
  own loader for frames whose pixel count is not a multiple of 4 (the adapter builds each frame's Float32Array at
  ``frame * rows * columns`` *bytes*, an element offset) — the test holds that to exactly this known error, so any
  other failure, or a fixed OHIF, shows.

Screenshots go to ``$VOXCAUSE_SCREENSHOTS`` when set (docs/images/ was made that way). Skips with the reason
where no browser is installed (.ci/setup_browser.sh installs Chromium and Playwright in CI).
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.monailabel

CHROMIUM = os.environ.get("VOXCAUSE_CHROMIUM", "/usr/bin/chromium")
BROWSER_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync"]
#: The overlay's centre must lie this close to the tumour's (fraction of the head's extent on screen).
CENTRE_TOLERANCE = 0.12
#: OHIF 3.9's Parametric Map loader's error for frames of rows x columns not a multiple of 4 (see module doc).
OHIF_PM_OFFSET_ERROR = "start offset of Float32Array should be a multiple of 4"


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("Playwright is not installed — run .ci/setup_browser.sh (Chromium + Playwright)")
    if not shutil.which(CHROMIUM):
        pytest.skip(f"no Chromium at {CHROMIUM} — run .ci/setup_browser.sh (apt-get install chromium)")
    with sync_playwright() as playwright, tempfile.TemporaryDirectory() as profile:
        context = playwright.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, args=BROWSER_ARGS, headless=True,
            viewport={"width": 1600, "height": 1000})
        try:
            yield context
        finally:
            context.close()


class Page:
    """One OHIF page and what its console said."""

    def __init__(self, context, url: str) -> None:
        self.page = context.new_page()
        self.console: list[str] = []
        self.page.on("console", lambda message: self.console.append(message.text))
        self.page.on("pageerror", lambda error: self.console.append(str(error)))
        self.page.goto(url, wait_until="load", timeout=120_000)

    def dismiss_banner(self) -> None:
        banner = self.page.get_by_text("Confirm and Hide")
        if banner.count():
            banner.first.click()

    def wait_console(self, words: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not any(words in line for line in self.console):
            assert time.monotonic() < deadline, f"no console line with {words!r}: {self.console[-20:]}"
            self.page.wait_for_timeout(500)

    def viewport_pixels(self, index: int = 0) -> np.ndarray:
        """RGB pixels of the ``index``-th viewport (the axial one in MONAI Label's three-view layout)."""
        from PIL import Image

        box = self.page.locator(".cornerstone-viewport-element").nth(index).bounding_box()
        shot = Image.open(io.BytesIO(self.page.screenshot())).convert("RGB")
        return np.asarray(shot.crop((int(box["x"]), int(box["y"]), int(box["x"] + box["width"]),
                                     int(box["y"] + box["height"]))), dtype=np.int16)

    def save(self, name: str) -> None:
        folder = os.environ.get("VOXCAUSE_SCREENSHOTS")
        if folder:
            Path(folder).mkdir(parents=True, exist_ok=True)
            self.page.screenshot(path=str(Path(folder) / name))


def _relative_centre(mask: np.ndarray, head: np.ndarray) -> np.ndarray:
    """Centre of ``mask`` as (row, column) fractions of the bounding box of ``head`` (both 2D)."""
    rows, cols = np.nonzero(head)
    low, high = np.array([rows.min(), cols.min()]), np.array([rows.max(), cols.max()])
    return (np.argwhere(mask).mean(0) - low) / (high - low)


def _expected_centre(patient) -> np.ndarray:
    """The tumour's centre on the middle axial slice (where OHIF's MPR opens), as (row, column) fractions of the
    head's extent there. OHIF shows an axial slice anterior at the top and patient right on the left: rows follow
    LPS y, columns LPS x, whatever the series' direction, so the fractions are taken in physical coordinates."""
    geometry = patient.image(patient.label.astype(np.uint8))
    matrix = np.array(geometry.GetDirection()).reshape(3, 3) * np.array(geometry.GetSpacing())
    middle = np.zeros(patient.label.shape, bool)
    middle[patient.label.shape[0] // 2] = True

    def lps_xy(mask: np.ndarray) -> np.ndarray:
        return (np.argwhere(mask)[:, ::-1] @ matrix.T + np.array(geometry.GetOrigin()))[:, :2]

    tumour = lps_xy((patient.label > 0) & middle)
    head = lps_xy((patient.channels[0] > 0.05 * patient.channels[0].max()) & middle)
    low, high = head.min(0), head.max(0)
    return ((tumour.mean(0) - low) / (high - low))[::-1]  # (x, y) -> (row: y, column: x)


def _painted(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    return np.abs(after - before).sum(-1) > 60


def _screen_head(pixels: np.ndarray) -> np.ndarray:
    """The head on a screenshot: the largest connected set of bright grey pixels (not the viewport's cyan text)."""
    from scipy import ndimage

    labels, count = ndimage.label((pixels.mean(-1) > 60) & ((pixels.max(-1) - pixels.min(-1)) < 25))
    assert count, "no image on the viewport"
    return labels == 1 + int(np.argmax(ndimage.sum_labels(np.ones(labels.shape), labels, range(1, count + 1))))


def _coloured(pixels: np.ndarray) -> np.ndarray:
    return (pixels.max(-1) - pixels.min(-1)) > 60


def _heat(pixels: np.ndarray) -> np.ndarray:
    """Pixels in the red-to-yellow colours of the responsibility levels (`voxcause.levels.heat_colour`)."""
    red, blue = pixels[..., 0].astype(int), pixels[..., 2].astype(int)
    return (red > 150) & (red - blue > 80)


def _connect(page: Page, server_url: str) -> None:
    page.page.wait_for_selector("text=Server:", timeout=120_000)
    address = page.page.locator("input[value*='http']").first
    address.fill(server_url + "/")
    address.press("Enter")
    address.locator("xpath=following::button[1]").click()  # the panel's connect (refresh) button
    page.page.wait_for_selector("text=Auto-Segmentation", timeout=60_000)
    page.dismiss_banner()


def _run_task(page: Page, task: str) -> dict:
    """Run ``task`` from the panel's Auto-Segmentation list; the request the panel sent, and its status."""
    models = page.page.locator("select", has=page.page.locator("option", has_text="explain_rex")).first
    models.select_option(label=task)
    updates = sum("updated the segmentation's scalar data" in line for line in page.console)
    with page.page.expect_response(lambda r: f"/infer/{task}" in r.url, timeout=600_000) as answer:
        models.locator("xpath=following::button[1]").click()
    response = answer.value
    deadline = time.monotonic() + 60
    while sum("updated the segmentation's scalar data" in line for line in page.console) == updates:
        assert time.monotonic() < deadline, f"{task}: the panel never painted the reply: {page.console[-20:]}"
        page.page.wait_for_timeout(500)
    page.page.wait_for_timeout(2000)
    return {"status": response.status, "url": response.url, "body": response.request.post_data or ""}


def test_monai_label_panel_runs_segmentation_and_explain_rex_on_the_tumour(browser, pacs_server, pacs_study):
    page = Page(browser, f"{pacs_server.url}/ohif/monai-label?StudyInstanceUIDs={pacs_study['study_uid']}")
    _connect(page, pacs_server.url)
    page.page.wait_for_timeout(3000)
    before = page.viewport_pixels()
    expected = _expected_centre(pacs_study["patient"])

    sent = _run_task(page, "segmentation")
    assert sent["status"] == 200 and '"result_compress":false' in sent["body"], sent  # raw NRRD, as it asks
    after = page.viewport_pixels()
    painted = _painted(before, after)
    centre = _relative_centre(painted, _screen_head(before))
    print(f"\nOHIF segmentation: {int(painted.sum())} pixels painted on the axial view, centre {centre.round(2)} of "
          f"the head (tumour {expected.round(2)})")
    assert painted.sum() > 300 and np.abs(centre - expected).max() < CENTRE_TOLERANCE, (centre, expected)
    page.save("ohif_segmentation.png")

    sent = _run_task(page, "explain_rex")
    assert sent["status"] == 200, sent
    remap = next(line for line in reversed(page.console) if line.startswith("Index Remap"))
    explained = page.viewport_pixels()
    drawn = _painted(after, explained)
    centre = _relative_centre(drawn, _screen_head(before))
    print(f"OHIF explain_rex: {int(drawn.sum())} pixels repainted, centre {centre.round(2)}; {remap[:160]}")
    assert drawn.sum() > 300 and np.abs(centre - expected).max() < CENTRE_TOLERANCE, (centre, expected)
    page.save("ohif_explain_rex.png")


def test_stored_explanation_opens_in_the_ohif_viewer_with_its_named_segments(browser, pacs_server, pacs_study):
    if not any("voxcause rex" in str(record.get("0008103E", {}).get("Value", [""])[0])
               for record in _study_series(pacs_server, pacs_study)):
        from monailabel.client import MONAILabelClient  # this test alone: store an explanation first

        MONAILabelClient(pacs_server.url).infer("explain_rex", pacs_study["series"]["T1"], {"iterations": 3})
    page = Page(browser, f"{pacs_server.url}/ohif/viewer?StudyInstanceUIDs={pacs_study['study_uid']}")
    page.page.wait_for_selector("text=PMAP", timeout=120_000)  # OHIF knows the maps as Parametric Maps
    page.dismiss_banner()
    page.page.get_by_text("(segments)").first.dblclick()
    page.page.get_by_role("button", name="Yes").click(timeout=60_000)
    deadline = time.monotonic() + 60
    while not page.page.evaluate("() => window.services.segmentationService.getSegmentations().length"):
        assert time.monotonic() < deadline, page.console[-20:]
        page.page.wait_for_timeout(500)
    segmentation = page.page.evaluate("""() => {
        const s = window.services.segmentationService.getSegmentations()[0];
        return {id: s.segmentationId, segments: Object.entries(s.segments).filter(([, v]) => v)
                .map(([index, v]) => [Number(index), v.label])};
    }""")
    names = dict((label, index) for index, label in segmentation["segments"])
    print(f"\nOHIF viewer, stored SEG: segments {list(names)}")
    assert {"sufficient explanation", "responsibility level 5"} <= set(names), names
    before = page.viewport_pixels()
    page.page.evaluate("([id, index]) => window.services.segmentationService.jumpToSegmentCenter(id, index)",
                       [segmentation["id"], names["responsibility level 5"]])
    page.page.wait_for_timeout(3000)
    shown = page.viewport_pixels()
    # a grey MR slice has no heat-coloured pixel and OHIF's own chrome is blue and grey: what is red-to-yellow is
    # the SEG's levels (the jump may land on the slice already shown, so the count is not compared with before)
    print(f"heat-coloured pixels: {int(_heat(before).sum())} before the jump, {int(_heat(shown).sum())} after")
    assert _heat(shown).sum() > 300, "no level painted"
    page.save("ohif_pacs_seg.png")

    page.page.get_by_text("(probability)").first.dblclick()
    page.page.wait_for_timeout(15_000)
    loader_error = [line for line in page.console if OHIF_PM_OFFSET_ERROR in line]
    heat = _coloured(page.viewport_pixels()).sum()
    print(f"OHIF viewer, stored Parametric Map: {'OHIF loader error: ' + loader_error[0][:120] if loader_error else ''}"
          f" coloured pixels {int(heat)}")
    rows, columns = pacs_study["patient"].channels.shape[2:]
    if (rows * columns) % 4:
        assert loader_error, f"OHIF loaded a {rows}x{columns} Parametric Map: drop the known-bug clause"
    else:
        assert not loader_error and heat > 300


def _study_series(server, pacs_study) -> list[dict]:
    import requests

    response = requests.get(f"{server.url}/proxy/dicom/qido/studies/{pacs_study['study_uid']}/series", timeout=60)
    response.raise_for_status()
    return response.json()
