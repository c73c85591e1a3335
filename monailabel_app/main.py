"""voxcause MONAI Label app: the sample tumour segmenter plus explanations drawn beside its segmentation.

Start it with::

    python -m monailabel.main start_server --app monailabel_app --studies DIR --conf models all

This file only wires: it reads the settings once (lib/settings.py), finds the TaskConfigs in lib/configs
(one per model or explainer, picked with ``--conf models``; the explain ones are short declarations on
lib/config_base.py), and asks each for its infer task. Three MONAI Label behaviours are adjusted on the way:
when the server starts, its ``/infer/{model}`` route is swapped for the app's (lib/serving.py: inference off
the event loop, queued per model, cancelled when the client leaves) and ``/logs`` is taken away unless
``--conf logs on``; every infer request's image is checked before MONAI Label resolves it (lib/guard.py); and
batch inference on a machine without CUDA uses the CPU instead of an empty GPU list.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import pkgutil
from typing import Any

import lib.configs
import torch
from lib.catalog import model_facts
from lib.dicomweb import VoxcauseDICOMweb
from lib.guard import check_request, input_errors_as_422
from lib.infers.base import DICOM_KEY_SUFFIX
from lib.jobs import current_job
from lib.settings import AppSettings
from monailabel.config import settings
from monailabel.interfaces.app import MONAILabelApp
from monailabel.interfaces.config import TaskConfig
from monailabel.interfaces.datastore import Datastore
from monailabel.interfaces.exception import MONAILabelError, MONAILabelException
from monailabel.interfaces.tasks.infer_v2 import InferTask
from monailabel.interfaces.tasks.train import TrainTask

logger = logging.getLogger(__name__)


def _task_configs() -> dict[str, type[TaskConfig]]:
    """Every concrete TaskConfig in lib/configs, by module name (the name ``--conf models`` uses).

    MONAI Label's ``get_class_names`` only sees direct TaskConfig subclasses; the explain configs are
    declarations on `lib.config_base.ExplanationConfig`, which is abstract and outside this package.
    """
    found: dict[str, type[TaskConfig]] = {}
    for module_info in pkgutil.iter_modules(lib.configs.__path__):
        if module_info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{lib.configs.__name__}.{module_info.name}")
        for value in vars(module).values():
            if (inspect.isclass(value) and issubclass(value, TaskConfig) and value.__module__ == module.__name__
                    and not inspect.isabstract(value)):
                found[module_info.name.lower()] = value
    return dict(sorted(found.items()))


def _selected(conf: dict[str, str], available: dict[str, type[TaskConfig]]) -> list[str]:
    wanted = [name.strip() for name in conf.get("models", "").split(",") if name.strip()]
    if not wanted:
        raise MONAILabelException(
            MONAILabelError.APP_INIT_ERROR,
            f"no models chosen — pass --conf models all, or a comma list of: {', '.join(available)}",
        )
    unknown = [name for name in wanted if name != "all" and name not in available]
    if unknown:
        raise MONAILabelException(
            MONAILabelError.APP_INIT_ERROR,
            f"unknown model(s) {unknown} — choose from: all, {', '.join(available)}",
        )
    return list(available) if "all" in wanted else wanted


class VoxcauseApp(MONAILabelApp):
    """The MONAI Label app serving the segmenter, the explainers and the counterfactual test."""

    def __init__(self, app_dir: str, studies: str, conf: dict[str, str]) -> None:
        self.settings = AppSettings.from_conf(app_dir, studies, conf)
        available = _task_configs()
        self.task_configs: dict[str, TaskConfig] = {}
        for name in _selected(conf, available):
            config = available[name]()
            config.init(name, str(self.settings.app_dir / "model"), conf, None, settings=self.settings)
            self.task_configs[name] = config
        logger.info(f"voxcause: task configs {list(self.task_configs)}")
        # the sequences a DICOMweb study must hold, in input order (the segmenter's card, else the classifier's)
        facts = [model_facts(path, role) for role, path in (("segmenter", self.settings.segmenter),
                                                            ("classifier", self.settings.classifier))]
        self.channel_names = next((f.channel_names for f in facts if f is not None and f.channel_names), ())

        import voxcause

        super().__init__(
            app_dir=app_dir,
            studies=studies,
            conf=conf,
            name="voxcause - causal explanations",
            description="Tumour segmentation with causal explanations, saliency and counterfactual region tests",
            version=voxcause.__version__,
        )

    def init_remote_datastore(self) -> Datastore:
        """``--studies http(s)://.../dicom-web``: the DICOMweb datastore of lib/dicomweb.py (multi-sequence
        images, DICOM SEG by pydicom-seg); XNAT and DSA stay MONAI Label's."""
        if settings.MONAI_LABEL_DATASTORE.lower() in ("", "dicomweb"):
            from lib.dicomweb import make_datastore

            return make_datastore(self.studies, channels=self.channel_names)
        return super().init_remote_datastore()

    def init_infers(self) -> dict[str, InferTask]:
        infers: dict[str, InferTask] = {}
        for name, config in self.task_configs.items():
            tasks = config.infer()
            tasks = tasks if isinstance(tasks, dict) else {name: tasks}
            for key, task in tasks.items():
                logger.info(f"voxcause: infer task {key} => {task}")
                infers[key] = task
        return infers

    def init_trainers(self) -> dict[str, TrainTask]:
        return {}

    def task_names(self) -> list[str]:
        """The infer tasks the server offers (the names ``/infer/<task>`` takes)."""
        return list(self._infers)

    def on_init_complete(self) -> None:
        """MONAI Label's start-up work, then the app's endpoints on the FastAPI app being served."""
        super().on_init_complete()
        from lib import auth, serving
        from monailabel.app import app  # the server's FastAPI app: it is starting us from its lifespan

        serving.install(app, logs=self.settings.logs, cors_origins=self.settings.cors_origins)
        if settings.MONAI_LABEL_AUTH_ENABLE:
            auth.install()
        logger.info(f"voxcause: /infer runs off the event loop (at most {self.settings.max_requests} requests); "
                    f"/logs {'served' if self.settings.logs else 'off'}; sign-in "
                    f"{'on' if settings.MONAI_LABEL_AUTH_ENABLE else 'OFF'}; browsers may call from "
                    f"{', '.join(self.settings.cors_origins) or 'ANY page'}")

    def infer(self, request: dict[str, Any], datastore: Any = None) -> dict[str, Any]:
        """MONAI Label's infer, after the image checks of lib/guard.py."""
        with input_errors_as_422():  # a DICOMweb series the model cannot take is refused while it is looked up
            check_request(request, datastore or self.datastore(), self.settings, job=current_job())
        request = dict(request)
        image = request.get("image")
        # the checked studies id names the folder the float map is kept in; an upload gets a content hash
        request["voxcause_image_id"] = None if not isinstance(image, str) or "/" in image else image
        store = datastore or self.datastore()
        pacs = store if isinstance(store, VoxcauseDICOMweb) else None
        # a PACS series: the tasks write DICOM objects referencing it, stored here in its study (never a folder
        # the request names: the key is always overwritten)
        request["voxcause_dicom_series"] = pacs.series_folder(request["voxcause_image_id"]) if pacs else None
        with input_errors_as_422():
            result = super().infer(request, datastore)
        if pacs is not None:
            params = result.get("params") or {}
            files = {key: path for key, path in params.items() if key.endswith(DICOM_KEY_SUFFIX)}
            if files:
                params["stored_in_pacs"] = pacs.store_results(files)
        return result

    def next_sample(self, request: dict[str, Any]) -> dict[str, Any]:
        """MONAI Label's next sample; a DICOMweb series the model cannot take is a 422, not a bare 500."""
        with input_errors_as_422():
            return super().next_sample(request)

    def batch_infer(self, request: dict[str, Any], datastore: Any = None) -> dict[str, Any]:
        """MONAI Label's batch infer; without CUDA, ``multi_gpu`` would spread the images over no device."""
        if not torch.cuda.is_available():
            request = {**request, "multi_gpu": False, "device": "cpu"}
        return super().batch_infer(request, datastore)
