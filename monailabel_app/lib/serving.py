"""The app's ``POST /infer/{model}`` and ``GET /queue/``: inference off the event loop, queued, cancellable.

Why the endpoint is replaced: MONAI Label 0.8.5 declares ``/infer/{model}`` ``async def`` and computes the
request inside it (monailabel/endpoints/infer.py ``run_inference`` -> ``MONAILabelApp.infer``), so while one
explanation runs the event loop answers nothing — not ``/info/``, not a bad request, not a request for another
model. Its ``MONAI_LABEL_INFER_CONCURRENCY`` thread pool does not help: the endpoint still waits for the result
on the loop (``Future.result``). When the app starts (`install`, from ``VoxcauseApp.on_init_complete``) it
swaps that route on MONAI Label's own FastAPI app for `infer`, which keeps MONAI Label's interface (path, query,
form fields, ``output``, the multipart reply of its ``send_response``) and changes how a request is served:

1. **At the door, on the event loop** (cheap, answered at once): an unknown task is a 404, ``params`` that are
   not a small JSON object of finite values a 422 (lib/boundary.py), a request with no image a 400, a server
   already holding `AppSettings.max_requests` requests a 503.
2. **Uploads are stored by the app**, each request's in a private folder of its own, at most
   ``max_upload_mb`` (413 beyond). The request's `Job` (lib/jobs.py) records exactly these paths; the upload
   guard (lib/guard.py) accepts no other file, so one request cannot have another request's upload read,
   whatever it is called and whether it exists.
3. **The work runs in a thread of its own** (``MONAILabelApp.infer``: the guard, MONAI Label's task, the
   core). Threads, not processes: the loaded models stay shared (one copy in memory), torch and numpy release
   the GIL while they compute, and a thread is needed only for the blocking call. Each model serves one
   request at a time, in arrival order (lib/models.py), so requests for different models run in parallel and
   a request waits only for requests on its own model; ``GET /queue/`` lists them with their state.
4. **A request whose client disconnected is cancelled**: the endpoint polls the connection while it waits and
   cancels the job, which stops while waiting for its model or at the core's next progress report.

Every refusal goes out with its values clipped to 80 characters (`boundary.clip_detail`).
"""

from __future__ import annotations

import asyncio
import logging
import pathlib
import re
import tempfile
from concurrent.futures import ThreadPoolExecutor
from functools import cache, partial
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Depends, FastAPI, File, Form, HTTPException, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.middleware import Middleware
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import Response
from monailabel.config import RBAC_USER, settings
from monailabel.endpoints.infer import send_response
from monailabel.endpoints.user.auth import RBAC, User
from monailabel.interfaces.utils.app import app_instance
from monailabel.utils.others.generic import handle_torch_linalg_multithread
from starlette.routing import BaseRoute

from .boundary import clip_detail, parse_params, shown
from .jobs import JOBS, Job, RequestCancelled, running_as

logger = logging.getLogger(__name__)

#: How often a waiting endpoint looks whether its client is still connected (seconds).
DISCONNECT_POLL_SECONDS = 0.5
#: The replies MONAI Label's ``output`` query offers that this app serves.
OUTPUTS = ("image", "json", "all")
#: An upload's file name suffix: one or two short alphanumeric extensions (``.nii.gz``, ``.nrrd``).
_SUFFIX = re.compile(r"^\.[A-Za-z0-9]{1,8}$")
#: Status sent for a request whose client has gone (nginx's "client closed request"; nobody reads it).
CLIENT_GONE = 499

router = APIRouter()
#: The signed-in user with MONAI Label's user role (anyone when authentication is off), as its endpoints take it.
AnyUser = Annotated[User, Depends(RBAC(settings.MONAI_LABEL_AUTH_ROLE_USER))]


def _suffix(filename: str | None) -> str:
    suffixes = [s for s in pathlib.PurePath(filename or "").suffixes if _SUFFIX.match(s)][-2:]
    return "".join(suffixes) or ".nii.gz"


def _store(upload: UploadFile, path: pathlib.Path, limit: int) -> None:
    """Copy an uploaded file to ``path``; more than ``limit`` bytes is a 413 (the copy stops there)."""
    written = 0
    with open(path, "wb") as out:
        while chunk := upload.file.read(1 << 20):
            written += len(chunk)
            if written > limit:
                raise HTTPException(
                    status_code=413,
                    detail=f"upload is over {limit / 2**20:.0f} MiB, the server's limit — crop or downsample the "
                    "image, or raise --conf max_upload_mb",
                )
            out.write(chunk)


def _admit(instance: Any, model: str, params: str, output: str, *, image: str, session_id: str,
           has_file: bool) -> dict[str, Any]:
    """The checks at the door (see the module docstring, step 1); returns the parsed ``params``."""
    tasks = instance.task_names()
    if model not in tasks:
        raise HTTPException(status_code=404, detail=f"no task {shown(model)} on this server — choose one of "
                            f"{', '.join(tasks)} (GET /info/ lists them with their options)")
    values = parse_params(params)
    if output and output not in OUTPUTS:
        detail = (f"output={shown(output)} is not offered — use one of {', '.join(OUTPUTS)}" if output != "dicom_seg"
                  else "output=dicom_seg is not offered — DICOM SEG goes to the PACS when a label is saved "
                  "(PUT /datastore/label); ask for output=image, json or all")
        raise HTTPException(status_code=422, detail=detail)
    if not (has_file or image or session_id):
        raise HTTPException(status_code=400, detail="no image given — pass ?image=<id> of a studies image, upload "
                            "the image as form field 'file', or pass ?session_id=<id>")
    if len(JOBS) >= instance.settings.max_requests:
        raise HTTPException(status_code=503, headers={"Retry-After": "30"},
                            detail=f"the server is working on {len(JOBS)} requests, its limit — try again when one "
                            "has ended (GET /queue/ lists them), or raise --conf max_requests")
    return values


def _uploaded(value: UploadFile | str | None, field: str) -> UploadFile | None:
    """The form field as an uploaded file (an empty text value: none); any other text is a 422."""
    if isinstance(value, str):
        if value:
            raise HTTPException(status_code=422, detail=f"form field '{field}' holds text, not a file — send the "
                                "image as a multipart file part (with a file name)")
        return None
    return value


def _session_image(instance: Any, session_id: str) -> str:
    sessions = instance.sessions()
    session = sessions.get_session(session_id) if sessions is not None else None
    if session is None:
        raise HTTPException(status_code=404, detail=f"no session {shown(session_id)} — it expired or was never "
                            "made; upload the image again (PUT /session/)")
    return session.image


def _serve(job: Job, instance: Any, model: str, image: str, values: dict[str, Any], session_id: str, output: str,
           background_tasks: BackgroundTasks) -> Response | dict[str, Any]:
    """The work of one request, in its own thread (step 3): MONAI Label's ``run_inference`` after the upload."""
    with running_as(job):
        try:
            request: dict[str, Any] = {"image": job.upload_path or image}
            if job.label_path:
                request["label"] = job.label_path
            request.update(values)  # as MONAI Label: params may name another image (the guard checks it)
            request["model"] = model  # but not another task than the one the route names
            if session_id:
                job.session_image = request["image"] = _session_image(instance, session_id)
            job.check()
            handle_torch_linalg_multithread(request)  # as MONAI Label's own infer threads: CUDA linalg per thread
            result = instance.infer(request)
            job.check()
            return send_response(instance.datastore(), result, output or None, background_tasks)
        except RequestCancelled:
            logger.info(f"voxcause: request {job.id} ({job.task}) stopped: {job.cancel_reason}")
            raise
        finally:
            job.remove_files()
            JOBS.remove(job)


async def _until_done_or_gone(future: asyncio.Future, request: Request, job: Job) -> Response | dict[str, Any]:
    """Wait for the job's thread; if the client disconnects first, cancel the job (step 4)."""
    while True:
        done, _ = await asyncio.wait({future}, timeout=DISCONNECT_POLL_SECONDS)
        if done:
            return future.result()
        if await request.is_disconnected():
            job.cancel("the client disconnected")
            logger.info(f"voxcause: request {job.id} ({job.task}) cancelled: the client disconnected")
            return Response(status_code=CLIENT_GONE)


def _retrieve(future: asyncio.Future) -> None:
    """Consume a finished job's outcome (a cancelled job ends with RequestCancelled, which nobody awaits)."""
    if not future.cancelled():
        future.exception()


@router.post("/infer/{model}", summary=f"{RBAC_USER}Run Inference for supported model", response_model=None)
async def infer(
    request: Request,
    background_tasks: BackgroundTasks,
    model: str,
    user: AnyUser,
    image: str = "",
    session_id: str = "",
    params: Annotated[str, Form()] = "{}",
    file: Annotated[UploadFile | str | None, File()] = None,
    label: Annotated[UploadFile | str | None, File()] = None,
    output: str = "",
) -> Response | dict[str, Any]:
    """MONAI Label's inference endpoint, served as the module docstring says. ``file`` and ``label`` also take
    text so that a text value is refused here in one short line (FastAPI's own refusal echoes it whole)."""
    instance = app_instance()
    try:
        file, label = _uploaded(file, "file"), _uploaded(label, "label")
        values = _admit(instance, model, params, output, image=image, session_id=session_id,
                        has_file=file is not None)
        if label is not None and _suffix(label.filename) == ".bin":
            raise HTTPException(status_code=415, detail="a .bin label (scribbles) is not taken by this app's tasks — "
                                "upload the region as NIfTI or NRRD on the image's grid")
        job = Job(task=model, user=user.username)
        JOBS.add(job)
        try:
            if file is not None or label is not None:
                job.folder = pathlib.Path(tempfile.mkdtemp(prefix="voxcause-request-"))
            limit = instance.settings.max_upload_bytes
            if file is not None:
                job.upload_path = str(job.folder / f"image{_suffix(file.filename)}")
                await run_in_threadpool(_store, file, pathlib.Path(job.upload_path), limit)
            if label is not None:
                job.label_path = str(job.folder / f"label{_suffix(label.filename)}")
                await run_in_threadpool(_store, label, pathlib.Path(job.label_path), limit)
            work = partial(_serve, job, instance, model, image, values, session_id, output, background_tasks)
            future = asyncio.get_running_loop().run_in_executor(_pool(instance.settings.max_requests), work)
        except BaseException:
            job.remove_files()
            JOBS.remove(job)
            raise
        future.add_done_callback(_retrieve)
        return await _until_done_or_gone(future, request, job)
    except HTTPException as error:
        if error.status_code < 500:
            error.detail = clip_detail(error.detail)
        raise
    except RequestCancelled:
        return Response(status_code=CLIENT_GONE)


@router.get("/queue/", summary=f"{RBAC_USER}Requests the server is working on")
async def queue(user: AnyUser) -> dict[str, Any]:
    """The ``/infer`` requests in the server, in arrival order: task, user, state (queued, waiting for a model,
    running, cancelling), the core's stage and progress, seconds waited and running."""
    return {"requests": JOBS.snapshot()}


@cache
def _pool(workers: int) -> ThreadPoolExecutor:
    """One thread per admitted request (at most ``max_requests`` are admitted), so a request never waits for a
    thread behind requests for another model."""
    return ThreadPoolExecutor(max_workers=workers, thread_name_prefix="voxcause-infer")


def _included_from(route: BaseRoute, router: APIRouter) -> bool:
    """True if the app's ``route`` is MONAI Label's ``router``: FastAPI >= 0.16x keeps an included router as one
    entry (``original_router``); older versions copy each of its routes into the app (same path and methods)."""
    if getattr(route, "original_router", None) is router:
        return True
    own = {(settings.MONAI_LABEL_API_STR + r.path, frozenset(getattr(r, "methods", None) or ())) for r in router.routes}
    return (getattr(route, "path", None), frozenset(getattr(route, "methods", None) or ())) in own


def _limit_cors(app: FastAPI, origins: tuple[str, ...]) -> None:
    """Let browsers call the server only from ``origins``: MONAI Label's CORS middleware allows any page, and
    its own setting for the list (``MONAI_LABEL_CORS_ORIGINS``) makes 0.8.5's ``start_server`` crash (it logs
    its settings with ``json.dumps``, which cannot write the list's URL objects). The middleware is given the
    list and the stack is rebuilt for the next request (Starlette builds it on the first call: the lifespan)."""
    app.user_middleware = [
        Middleware(CORSMiddleware, allow_origins=list(origins), allow_credentials=True, allow_methods=["*"],
                   allow_headers=["*"]) if middleware.cls is CORSMiddleware else middleware
        for middleware in app.user_middleware
    ]
    app.middleware_stack = None


def install(app: FastAPI, *, logs: bool, cors_origins: tuple[str, ...]) -> None:
    """Swap MONAI Label's /infer/{model} for `infer`, add /queue/, take /logs away unless ``logs``, and limit
    CORS to ``cors_origins`` when given."""
    from monailabel.endpoints import infer as monailabel_infer
    from monailabel.endpoints import logs as monailabel_logs

    removed = [monailabel_infer.router] + ([] if logs else [monailabel_logs.router])
    app.router.routes = [route for route in app.router.routes
                         if not any(_included_from(route, router) for router in removed)]
    app.include_router(router, prefix=settings.MONAI_LABEL_API_STR)
    if cors_origins:
        _limit_cors(app, cors_origins)
