"""Experiment tracking on MLflow: runs with their parameters, per-epoch curves, artifacts and model versions.

The store is the ``uri`` given (``--tracking-uri``, the YAML's ``tracking_uri``), else the standard
``MLFLOW_TRACKING_URI``, else an embedded SQLite store, ``sqlite:///outputs/mlflow.db``, with the artifacts
beside it in ``outputs/mlartifacts/``: no server to start. A tracking server (``mlflow server``) serves a
team; point the URI at it.

Tracking never makes a run fail. The first call that fails (an unreachable server, a locked store) prints
one warning line, and the run goes on untracked; with ``enabled=False`` (``--no-tracking``,
``tracking: false``, or ``NEO_ML_NO_TRACKING=1`` in the environment, as the test suite sets it) nothing
is touched at all. The MLflow client is used directly (``MlflowClient``), not
MLflow's process-wide active run, so a notebook kernel or a tuning study can hold several runs at once.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import socket
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from urllib.parse import urlparse

from neo_ml import paths

log = logging.getLogger(__name__)

EXPERIMENT = "neo-ml"
NCF_MODEL, CLASSIFIER_MODEL = "neo-ml-ncf", "neo-ml-classifier"  # the registered models
PARAM_VALUE_LIMIT = 6000  # MLflow's longest parameter value
BATCH_LIMIT = 100  # MLflow's most parameters in one log_batch call


def default_tracking_uri() -> str:
    """``MLFLOW_TRACKING_URI``, else the embedded SQLite store under ``outputs/``."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{paths.outputs_dir() / 'mlflow.db'}"


def _sqlite_file(uri: str) -> Path | None:
    """The database file of an embedded SQLite store (``None`` for a server)."""
    return Path(uri.removeprefix("sqlite:///")) if uri.startswith("sqlite:///") else None


def _first_line(error: BaseException) -> str:
    """An error as one short line, for a warning or a message that names the store."""
    text = str(error).strip()
    return text.splitlines()[0][:300] if text else type(error).__name__


def artifact_root(uri: str) -> str | None:
    """Where a new experiment of an embedded SQLite store keeps its artifacts: beside the database file.
    A server chooses its own (``None``)."""
    database = _sqlite_file(uri)
    return None if database is None else (database.resolve().parent / "mlartifacts").as_uri()


def _server_reachable(uri: str, timeout: float = 2.0) -> bool:
    """An HTTP store answers a TCP connection within ``timeout`` (MLflow's own client retries for minutes)."""
    parsed = urlparse(uri)
    if parsed.scheme not in ("http", "https"):
        return True
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((parsed.hostname, port), timeout=timeout):
            return True
    except OSError:
        return False


def flatten(params: Mapping, prefix: str = "") -> dict[str, str]:
    """Nested parameters as MLflow's flat ``section.key`` strings (lists written out, long values cut)."""
    flat = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat |= flatten(value, f"{name}.")
        else:
            flat[name] = str(value)[:PARAM_VALUE_LIMIT]
    return flat


def metric_name(key: str) -> str:
    """A metrics key as MLflow accepts it: ``val_hr@10`` becomes ``val_hr_at_10``."""
    return re.sub(r"[^\w\-. :/]", "_", key.replace("@", "_at_"))


def numeric_items(record: Mapping) -> dict[str, float]:
    """The numbers of a metrics record under MLflow names (booleans and text left out)."""
    return {metric_name(key): float(value) for key, value in record.items()
            if isinstance(value, int | float) and not isinstance(value, bool)}


class Tracker:
    """One tracked run (or none): ``start``, ``log_params``, ``log_history``, ``log_metrics``,
    ``log_artifact``, ``register``, ``finish``. Every call is a no-op once tracking is off."""

    def __init__(self, uri: str | None = None, enabled: bool = True, experiment: str = EXPERIMENT):
        self.uri = uri or default_tracking_uri()
        self.enabled = enabled and not os.environ.get("NEO_ML_NO_TRACKING")
        self.experiment = experiment
        self.run_id: str | None = None
        self._client = None

    def _call(self, what: str, action: Callable):
        """``action(client)``, or ``None`` with one warning line and tracking off if it fails."""
        if not self.enabled:
            return None
        try:
            if self._client is None:
                self._client = self._connect()
            return action(self._client)
        except Exception as error:  # noqa: BLE001 - tracking must never stop a run
            self.enabled = False
            print(f"warning: MLflow tracking off for this run: {what} on {self.uri} failed ({_first_line(error)})",
                  file=sys.stderr)
            return None

    def _connect(self):
        if not _server_reachable(self.uri):
            raise ConnectionError("the tracking server does not answer")
        from mlflow.tracking import MlflowClient

        database = _sqlite_file(self.uri)
        if database is not None:
            database.parent.mkdir(parents=True, exist_ok=True)
        return MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)

    def _experiment_id(self, client) -> str:
        found = client.get_experiment_by_name(self.experiment)
        if found is not None:
            return found.experiment_id
        try:
            return client.create_experiment(self.experiment, artifact_location=artifact_root(self.uri))
        except Exception:  # another process created it first
            return client.get_experiment_by_name(self.experiment).experiment_id

    def start(self, run_name: str, parent: Tracker | None = None, tags: Mapping[str, str] | None = None) -> Tracker:
        """Open the run (a child of ``parent``'s run when given)."""
        def create(client):
            run_tags = dict(tags or {})
            if parent is not None and parent.run_id:
                run_tags["mlflow.parentRunId"] = parent.run_id
            return client.create_run(self._experiment_id(client), run_name=run_name, tags=run_tags).info.run_id

        self.run_id = self._call("starting the run", create)
        if self.run_id is None:
            self.enabled = False
        return self

    def child(self, run_name: str, tags: Mapping[str, str] | None = None) -> Tracker:
        """A nested run under this one, in the same store (off if this one is off)."""
        return Tracker(self.uri, self.enabled, self.experiment).start(run_name, parent=self, tags=tags)

    def log_params(self, params: Mapping) -> None:
        """Every parameter, nested sections flattened to ``section.key``."""
        from mlflow.entities import Param

        items = [Param(key, value) for key, value in flatten(params).items()]
        for start in range(0, len(items), BATCH_LIMIT):
            batch = items[start:start + BATCH_LIMIT]
            self._call("logging parameters", lambda client, batch=batch: client.log_batch(self.run_id, params=batch))

    def set_tag(self, key: str, value: str) -> None:
        self._call("tagging the run", lambda client: client.set_tag(self.run_id, key, value))

    def log_metrics(self, metrics: Mapping, step: int | None = None, prefix: str = "") -> None:
        """The numbers of ``metrics`` (at ``step``, e.g. the epoch)."""
        self.log_history([metrics], step_key=None, step=step, prefix=prefix)

    def log_history(self, history: Iterable[Mapping], step_key: str | None = "epoch", step: int | None = None,
                    prefix: str = "") -> None:
        """One curve point per record and number, at ``step=record[step_key]`` (the epoch)."""
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        points = []
        for record in history:
            at = int(record[step_key]) if step_key else (step or 0)
            points += [Metric(prefix + key, value, now, at) for key, value in numeric_items(record).items()
                       if key != step_key]
        for start in range(0, len(points), 1000):
            batch = points[start:start + 1000]
            self._call("logging metrics", lambda client, batch=batch: client.log_batch(self.run_id, metrics=batch))

    def log_curves_and_figures(self, history: list[Mapping], metrics: Mapping) -> None:
        """Per-epoch curves, then the final figures once; a final figure that is also a curve (the chosen
        epoch's validation metric) is logged as ``best_<name>``, so the curve keeps one point per epoch."""
        self.log_history(history)
        curves = {key for record in history for key in numeric_items(record)}
        final = numeric_items(metrics)
        self.log_metrics({(f"best_{key}" if key in curves else key): value for key, value in final.items()})

    def log_artifact(self, path: str | Path, folder: str | None = None) -> None:
        """A file, or a folder's files, under the run's artifacts (in ``folder``)."""
        path = Path(path)
        if not path.exists():
            return
        if path.is_dir():
            self._call(f"storing {path}", lambda client: client.log_artifacts(self.run_id, str(path), folder))
        else:
            self._call(f"storing {path}", lambda client: client.log_artifact(self.run_id, str(path), folder))

    def register(self, model_name: str, artifact_folder: str, aliases: Iterable[str] = ()) -> str | None:
        """A new version of the registered model ``model_name`` from this run's ``artifact_folder``; returns
        the version (``None`` untracked). ``aliases`` (e.g. ``benchmark``) move to it."""
        def create(client):
            from mlflow.exceptions import MlflowException

            with contextlib.suppress(MlflowException):  # it exists already
                client.create_registered_model(model_name)
            source = f"{client.get_run(self.run_id).info.artifact_uri}/{artifact_folder}"
            version = client.create_model_version(model_name, source, run_id=self.run_id).version
            for alias in aliases:
                client.set_registered_model_alias(model_name, alias, version)
            return str(version)

        return self._call(f"registering {model_name}", create)

    def finish(self, failed: bool = False) -> None:
        """Close the run as FINISHED (or FAILED)."""
        status = "FAILED" if failed else "FINISHED"
        self._call("closing the run", lambda client: client.set_terminated(self.run_id, status))


def track_training(tracker: Tracker, model_name: str, params: Mapping, history: Iterable[Mapping],
                   metrics: Mapping, checkpoint: Iterable[str | Path], aliases: Iterable[str] = ()) -> str | None:
    """One training run into ``tracker``: every parameter with the git commit and package versions, the
    per-epoch curves (``step=epoch``), the final figures once, the checkpoint's files (a file with its
    ``.sha256``, or a folder with its manifest) under ``checkpoint/``, and a new version of ``model_name``.
    Returns the version (``None`` untracked)."""
    from neo_ml.files import git_commit, package_versions

    tracker.log_params({**params, "git_commit": git_commit() or "unknown", "packages": package_versions()})
    tracker.log_curves_and_figures(list(history), metrics)
    for path in checkpoint:
        tracker.log_artifact(path, "checkpoint")
    version = tracker.register(model_name, "checkpoint", aliases)
    tracker.finish()
    return version


def fetch_model(model_uri: str, tracking_uri: str | None = None, suffix: str | None = None) -> Path:
    """The checkpoint of a registered model version (``models:/NAME@ALIAS`` or ``models:/NAME/VERSION``),
    downloaded from the store into a new temporary folder: that folder, or with ``suffix`` (``.pt``) the
    one file in it that ends so. The caller verifies its checksums before loading. The folder is removed
    when the process exits (the services load lazily, so it must outlive this call), or at once if the
    download fails."""
    import atexit
    import shutil
    import tempfile

    from neo_ml.errors import NeoMLError

    match = re.fullmatch(r"models:/([^/@]+)(?:@([\w-]+)|/(\d+))", model_uri) if isinstance(model_uri, str) else None
    if match is None:
        raise NeoMLError(f"model_uri must look like models:/NAME@ALIAS or models:/NAME/VERSION, got {model_uri!r}")
    name, alias, version = match.groups()
    uri = tracking_uri or default_tracking_uri()
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    download_dir = tempfile.mkdtemp(prefix="neo-ml-model-")
    atexit.register(shutil.rmtree, download_dir, ignore_errors=True)
    try:
        import mlflow.artifacts
        from mlflow.tracking import MlflowClient

        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        found = client.get_model_version_by_alias(name, alias) if alias else client.get_model_version(name, version)
        folder = Path(mlflow.artifacts.download_artifacts(artifact_uri=found.source, tracking_uri=uri,
                                                          dst_path=download_dir))
    except Exception as error:  # noqa: BLE001 - any store failure, named with the URI
        shutil.rmtree(download_dir, ignore_errors=True)
        raise NeoMLError(f"{model_uri} on {uri}: cannot fetch the model ({_first_line(error)})") \
            from error
    if suffix is None:
        return folder
    found = sorted(folder.glob(f"*{suffix}"))
    if len(found) != 1:
        raise NeoMLError(f"{model_uri}: expected one *{suffix} checkpoint in the artifact, found {len(found)}")
    return found[0]


def promote(model_name: str, version: str, alias: str, tracking_uri: str | None = None) -> dict:
    """Move ``alias`` (``production``, ``benchmark``) to ``version`` of ``model_name``. Unlike tracking, a
    store that cannot be reached, or a version that does not exist, is an error."""
    from neo_ml.errors import NeoMLError

    uri = tracking_uri or default_tracking_uri()
    if not re.fullmatch(r"[\w-]+", alias) or alias.isdigit():
        raise NeoMLError(f"--alias {alias!r}: letters, digits, _ and - only, not a number")
    try:
        from mlflow.tracking import MlflowClient

        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        found = client.get_model_version(model_name, str(version))
        client.set_registered_model_alias(model_name, alias, found.version)
    except Exception as error:  # noqa: BLE001 - named with the store and the version
        raise NeoMLError(f"{model_name} version {version} on {uri}: cannot set alias {alias!r} "
                         f"({_first_line(error)})") from error
    return {"model": model_name, "version": str(found.version), "alias": alias,
            "model_uri": f"models:/{model_name}@{alias}", "source": found.source}


def ui_command(port: int, uri: str | None = None, host: str = "127.0.0.1") -> list[str]:
    """The ``mlflow server`` command line that serves the UI on ``uri``'s store (the embedded one by default),
    artifacts served beside it."""
    uri = uri or default_tracking_uri()
    command = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", uri, "--host", host,
               "--port", str(port), "--workers", "1"]
    root = artifact_root(uri)
    return command + (["--artifacts-destination", root] if root else [])
