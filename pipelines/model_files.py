"""A registered model version's files: their digest, and loading them from the model library's own format.

tickml never unpickles a model. LightGBM loads from its text model (`model.lgb`) and CatBoost from its
`.cbm` file, by the libraries' own loaders; a version whose MLmodel points at anything else (a pickle, a
cloudpickled pyfunc, a scikit-learn wrapper) is refused before a byte of it is read. The digest recorded at
registration (`MODEL_DIGEST_TAG`) covers the MLmodel file and the model file, so a version whose files
changed afterwards is refused too.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
import yaml

MODEL_DIGEST_TAG = "model.sha256"
# flavor -> (the MLmodel key naming the model class, the class tickml logs, the data file's suffix)
NATIVE = {
    "lightgbm": ("model_class", "lightgbm.basic.Booster", ".lgb"),
    "catboost": ("model_type", "CatBoostClassifier", ".cb"),
}


class UnsafeModel(ValueError):
    """A model version whose files are not a native model tickml logged, or changed since registration."""


def _flavor_conf(folder: Path, flavor: str) -> dict[str, Any]:
    mlmodel = folder / "MLmodel"
    if not mlmodel.is_file():
        raise UnsafeModel(f"{folder} holds no MLmodel file")
    conf = (yaml.safe_load(mlmodel.read_text()) or {}).get("flavors", {}).get(flavor)
    if not isinstance(conf, dict):
        raise UnsafeModel(f"its MLmodel has no {flavor!r} flavor")
    return conf


def native_file(folder: Path, flavor: str) -> Path:
    """The model file inside a downloaded model `folder`, once its MLmodel shows a native `flavor` model.

    Raises UnsafeModel naming what is wrong (an unknown flavor, a pickled or wrapped model, a data file
    outside the folder)."""
    if flavor not in NATIVE:
        raise UnsafeModel(f"flavor {flavor!r} is not one tickml loads ({', '.join(NATIVE)})")
    key, expected, suffix = NATIVE[flavor]
    conf = _flavor_conf(folder, flavor)
    if conf.get(key) != expected:
        raise UnsafeModel(
            f"its {flavor} model is a {conf.get(key)!r}, not a {expected}: MLflow would unpickle it, "
            "tickml loads native model files only"
        )
    if flavor == "catboost" and conf.get("save_format", "cbm") != "cbm":
        raise UnsafeModel(f"its CatBoost model is saved as {conf.get('save_format')!r}, not 'cbm'")
    data = str(conf.get("data", ""))
    path = (folder / data).resolve()
    if not data.endswith(suffix) or folder.resolve() not in path.parents or not path.is_file():
        raise UnsafeModel(f"its {flavor} data file {data!r} is not a {suffix} file inside the model folder")
    return path


def digest(folder: Path, flavor: str) -> str:
    """sha256 over the MLmodel file and the native model file of a model `folder` (hex)."""
    h = hashlib.sha256()
    for path in (folder / "MLmodel", native_file(folder, flavor)):
        h.update(path.name.encode() + b"\0")
        h.update(path.read_bytes())
        h.update(b"\0")
    return h.hexdigest()


def load_native(folder: Path, flavor: str) -> Any:
    """The model object from its native file: a `lightgbm.Booster` or a `catboost.CatBoostClassifier`."""
    path = native_file(folder, flavor)
    if flavor == "lightgbm":
        import lightgbm

        return lightgbm.Booster(model_file=str(path))
    import catboost

    model = catboost.CatBoostClassifier()
    model.load_model(str(path), format="cbm")
    return model


@contextlib.contextmanager
def downloaded(source: str, *, uri: str) -> Iterator[Path]:
    """The files of a model version (its download URI, e.g. `client.get_model_version_download_uri`), in a
    temporary folder removed on exit."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # one log line, not a bar
    with tempfile.TemporaryDirectory(prefix="tickml-model-") as folder:
        yield Path(
            mlflow.artifacts.download_artifacts(artifact_uri=source, dst_path=folder, tracking_uri=uri)
        )
