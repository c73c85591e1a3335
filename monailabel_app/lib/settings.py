"""The app's settings, read once from MONAI Label's ``--conf key value`` pairs and passed down.

Every knob lives here and nowhere else, so a setting is never defined in two places: the TaskConfigs
receive an `AppSettings` and hand the values to their infer tasks.

Conf keys (all optional):
    segmenter / classifier   a model voxcause.load_model accepts (card .json/.yaml, bundle folder,
                             TorchScript, ONNX, an nnU-Net v2 results folder — or its ``fold_N`` folder
                             for one fold); ``none``: no model of that role; default: ``model/<role>/card.json``
                             in the app if present, else the sample model shipped with voxcause.
    output_dir               where float maps and summaries are kept; default ``<studies>/voxcause``, or for a
                             DICOMweb server (``--studies http(s)://...``) ``voxcause`` in MONAI Label's
                             datastore cache (``MONAI_LABEL_DATASTORE_CACHE_PATH``, else
                             ``~/.cache/monailabel``).
    max_upload_mb            uploads larger than this are refused with 413 (default 256).
    max_voxels               images with more voxels (all channels) are refused with 413 (default 64 M).
    default_levels           number of heat levels an explain task draws by default (default 5).
    default_iterations       causal-responsibility iterations by default (default and bounds: the core's).
    max_requests             /infer requests held at once, queued and running (default 16); more get 503.
    logs                     ``on`` serves MONAI Label's /logs (the server log: every image id and request);
                             default ``off``. With authentication on it needs the admin role.

Environment (a settings file can carry it, e.g. shared-server.env):
    VOXCAUSE_CORS_ORIGINS    comma list of the web pages' origins (``https://viewer.example.org``) browsers may
                             call the server from; unset: any (MONAI Label's default). MONAI Label's own
                             ``MONAI_LABEL_CORS_ORIGINS`` crashes its 0.8.5 ``start_server``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .options import declared_option

#: Sample models of voxcause.samples used when the user names none (role -> sample names, first found wins).
SAMPLE_MODELS = {"segmenter": ("segmenter3d", "segmenter"), "classifier": ("classifier3d", "classifier")}


def _int_conf(conf: Mapping[str, str], key: str, default: int, *, low: int, high: int) -> int:
    raw = conf.get(key, default)
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise ValueError(f"--conf {key} {raw!r} is not an integer — pass e.g. --conf {key} {default}") from None
    if not low <= value <= high:
        raise ValueError(f"--conf {key} {value} is outside {low}..{high} — pass a value in that range")
    return value


def _switch_conf(conf: Mapping[str, str], key: str, default: bool) -> bool:
    raw = str(conf.get(key, "on" if default else "off")).strip().lower()
    if raw not in ("on", "off", "true", "false"):
        raise ValueError(f"--conf {key} {raw!r} is not on or off — pass --conf {key} on or --conf {key} off")
    return raw in ("on", "true")


#: An origin as browsers send it: scheme, host, optional port; nothing after.
_ORIGIN = re.compile(r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?$")


def _origins(raw: str) -> tuple[str, ...]:
    origins = tuple(origin.strip().rstrip("/") for origin in raw.split(",") if origin.strip())
    bad = [origin for origin in origins if not _ORIGIN.match(origin)]
    if bad:
        raise ValueError(f"VOXCAUSE_CORS_ORIGINS {bad[0]!r} is not an origin — give scheme://host[:port], "
                         "e.g. https://viewer.example.org, comma-separated")
    return origins


def _sample_model(names: tuple[str, ...]) -> Path | None:
    """Path of a sample model card inside the voxcause package, or None while the samples are absent."""
    try:
        from voxcause.samples import model_path
    except ImportError:
        return None
    for name in names:
        try:
            path = Path(model_path(name))
        except (LookupError, ValueError, OSError):
            continue
        if path.exists():
            return path
    return None


def resolve_model(role: str, conf: Mapping[str, str], app_dir: Path) -> Path | None:
    """Where the model for ``role`` ("segmenter" or "classifier") comes from.

    Order: ``--conf <role> PATH``; ``model/<role>/card.json`` in the app (MONAI Label's model folder, for a
    site's own model); the voxcause sample model of that role. The samples are referenced in place, not
    copied, so the app always serves the weights the package was tested with. ``--conf <role> none``: no
    model of that role (e.g. an nnU-Net segmenter served alone, without the sample classifier).
    """
    if str(conf.get(role, "")).strip().lower() == "none":
        return None
    if conf.get(role):
        return Path(conf[role]).expanduser().resolve()
    local = app_dir / "model" / role / "card.json"
    if local.exists():
        return local
    return _sample_model(SAMPLE_MODELS[role])


@dataclass(frozen=True)
class AppSettings:
    """Settings shared by every task of the app (see the module docstring for the conf keys)."""

    app_dir: Path
    #: the studies folder; for a DICOMweb server (``remote``) the folder the app keeps its files in
    studies: Path
    segmenter: Path | None
    classifier: Path | None
    output_dir: Path
    max_upload_bytes: int
    max_voxels: int
    default_levels: int
    default_iterations: int
    max_requests: int = 16
    logs: bool = False
    #: origins browsers may call from; empty: any
    cors_origins: tuple[str, ...] = ()
    #: the studies are on a DICOMweb server (``--studies http(s)://...``), not in a folder
    remote: bool = False

    @classmethod
    def from_conf(cls, app_dir: str | os.PathLike, studies: str | os.PathLike, conf: Mapping[str, str]) -> AppSettings:
        app = Path(app_dir).resolve()
        remote = str(studies).startswith(("http://", "https://"))
        studies_dir = _remote_cache() if remote else Path(studies).resolve()
        output = Path(conf["output_dir"]).expanduser().resolve() if conf.get("output_dir") else studies_dir / "voxcause"
        iterations = declared_option("rex", "iterations")  # the core's default and bounds
        return cls(
            app_dir=app,
            studies=studies_dir,
            segmenter=resolve_model("segmenter", conf, app),
            classifier=resolve_model("classifier", conf, app),
            output_dir=output,
            max_upload_bytes=_int_conf(conf, "max_upload_mb", 256, low=1, high=65536) * 1024 * 1024,
            max_voxels=_int_conf(conf, "max_voxels", 64 * 1024 * 1024, low=1024, high=2**34),
            default_levels=_int_conf(conf, "default_levels", 5, low=1, high=10),
            default_iterations=_int_conf(conf, "default_iterations", iterations.default, low=int(iterations.minimum),
                                         high=int(iterations.maximum)),
            max_requests=_int_conf(conf, "max_requests", 16, low=1, high=256),
            logs=_switch_conf(conf, "logs", False),
            cors_origins=_origins(os.environ.get("VOXCAUSE_CORS_ORIGINS", "")),
            remote=remote,
        )


def _remote_cache() -> Path:
    """MONAI Label's datastore cache root (where it keeps DICOMweb downloads), for a remote studies URL."""
    for key in ("MONAI_LABEL_DATASTORE_CACHE_PATH", "MONAI_LABEL_DICOMWEB_CACHE_PATH"):
        if os.environ.get(key, "").strip():
            return Path(os.environ[key].strip()).expanduser().resolve()
    return Path.home() / ".cache" / "monailabel"
