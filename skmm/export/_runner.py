"""OnnxPipeline: an exported pipeline, run by onnxruntime from raw inputs."""

import json
import os
from pathlib import Path

import numpy as np

from .._utils.validation import (
    as_pandas,
    cell_error,
    column_values,
    did_you_mean,
    plain,
    warn,
)

SPEC_FILE = "skmm_onnx.json"
FORMAT = 1


class OnnxPipeline:
    """A fitted multimodal pipeline exported to ONNX, predicting from raw inputs.

    Made by :func:`export_onnx` or read back by :meth:`load`. For each row of
    a DataFrame (the columns the pipeline was fit on: photo paths, text,
    attributes) the cells are read in Python with skmm's own code (photos
    decoded, resized and cropped as ImageEmbedder does, in batches; distinct
    texts cleaned and tokenized as TextEmbedder does, longest first), then
    the ONNX graphs run in onnxruntime: one per network (``models[name]``)
    and the ``"head"``, which holds every scikit-learn step, the fusion and
    the final estimator.

    Parameters
    ----------
    spec : dict
        What :func:`export_onnx` wrote: the modalities, their columns and
        their reading settings, the task and the classes.
    models : dict of str to onnx.ModelProto
        ``"head"`` and each network's graph, by modality name.
    tokenizers : dict of str to tokenizer
        The tokenizer of each text modality.
    providers : list of str, default=None
        onnxruntime execution providers; None runs on the CPU.
    n_threads : int, default=None
        Threads of each onnxruntime session (``intra_op_num_threads``); None
        leaves onnxruntime's default (one per physical core).

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The class labels (classifiers only).
    feature_names_in_ : ndarray of shape (n_features_in_,)
        The columns of the table the pipeline was fit on.

    See Also
    --------
    export_onnx : export a fitted pipeline.

    Examples
    --------
    >>> import tempfile
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.pipeline import Pipeline
    >>> from sklearn.preprocessing import OneHotEncoder
    >>> from skmm import MultimodalFuser, load_fashion
    >>> from skmm.export import OnnxPipeline, export_onnx
    >>> X, y = load_fashion(target="masterCategory", return_X_y=True)
    >>> model = Pipeline([
    ...     ("fuser", MultimodalFuser([
    ...         ("tabular", OneHotEncoder(handle_unknown="ignore"), ["season", "usage"]),
    ...     ])),
    ...     ("clf", LogisticRegression()),
    ... ]).fit(X[:300], y[:300])
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     export_onnx(model).save(folder)
    ...     exported = OnnxPipeline.load(folder)
    >>> exported.predict(X[300:303]).tolist() == model.predict(X[300:303]).tolist()
    True
    """

    def __init__(self, spec, models, tokenizers, *, providers=None, n_threads=None):
        self.spec = spec
        self.models = models
        self.tokenizers = tokenizers
        self.providers = providers
        self.n_threads = n_threads
        self._sessions = {}

    @property
    def classes_(self):
        if self.spec["task"] != "classifier":
            raise AttributeError("a regressor has no classes_")
        dtype = self.spec["classes_dtype"]
        return np.asarray(self.spec["classes"], dtype=object if dtype == "object" else dtype)

    @property
    def feature_names_in_(self):
        return np.asarray(self.spec.get("feature_names_in", []), dtype=object)

    def __repr__(self):
        kinds = ", ".join(f"{m['name']}: {m['kind']}" for m in self.spec["modalities"])
        return f"OnnxPipeline({self.spec['task']}; {kinds})"

    # -- prediction ------------------------------------------------------------

    def predict_proba(self, X):
        """Class probabilities of each row, as the pipeline's ``predict_proba``.

        Parameters
        ----------
        X : DataFrame of shape (n_samples, n_features)
            The columns the pipeline was fit on (pandas or polars).

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            float64, columns in the order of ``classes_``.
        """
        if self.spec["task"] != "classifier":
            raise AttributeError("a regressor has no predict_proba; use predict")
        proba = self._run(X).astype(np.float64)
        if self.spec["renormalize"]:  # NeuralClassifier's float32 softmax, summing to 1
            proba /= proba.sum(axis=1, keepdims=True)
        return proba

    def predict(self, X):
        """The pipeline's ``predict``: the most probable class, or the targets.

        Parameters
        ----------
        X : DataFrame of shape (n_samples, n_features)

        Returns
        -------
        y_pred : ndarray of shape (n_samples,) or (n_samples, n_outputs)
        """
        if self.spec["task"] == "classifier":
            return self.classes_[self.predict_proba(X).argmax(axis=1)]
        out = self._run(X).astype(np.float64)
        return out.ravel() if self.spec["ravel"] else out

    def _run(self, X):
        X = self._check_frame(X)
        feeds = {}
        for modality in self.spec["modalities"]:
            feeds.update(self._modality_inputs(modality, X))
        if len(X) == 0:
            width = len(self.spec.get("classes", [])) or 1
            return np.zeros((0, width))
        return self._session("head").run(None, feeds)[0]

    def _check_frame(self, X):
        X = as_pandas(X)
        if not hasattr(X, "columns"):
            raise TypeError(
                f"OnnxPipeline takes a DataFrame with the columns {list(self.feature_names_in_)}"
                f", got {type(X).__name__}"
            )
        available = [str(c) for c in X.columns]
        for modality in self.spec["modalities"]:
            for column in modality["columns"]:
                if column not in X.columns:
                    raise ValueError(
                        f"modality {modality['name']!r}: column {column!r} is not in X; the "
                        f"columns are {available}.{did_you_mean(column, available)}"
                    )
        return X

    def _modality_inputs(self, modality, X):
        kind = modality["kind"]
        if kind == "columns":
            return {spec["name"]: _column_block(X, spec) for spec in modality["inputs"]}
        column = modality["columns"][0]
        cells = X[column] if modality["single"] else X[[column]]
        embed = {"image": self._embed_images, "text": self._embed_texts,
                 "pixels": self._pixels}[kind]
        return {modality["inputs"][0]["name"]: embed(modality, cells)}

    def _pixels(self, modality, cells):
        from ..image import ImagePixels

        pixels = ImagePixels(modality["size"], on_error=modality["on_error"],
                             missing_indicator=modality["missing_indicator"])
        return pixels.fit(cells).transform(cells)

    def _embed_images(self, modality, cells):
        from ..image._preprocess import Preprocessing, read_cells

        values, column, rows = column_values(cells)
        settings = modality["preprocessing"]
        prep = Preprocessing(
            size=tuple(settings["image_size"]), resize=settings["resize"],
            crop_pct=settings["crop_pct"], interpolation=settings["interpolation"],
            mean=_tuple(settings["mean"]), std=_tuple(settings["std"]),
        )
        dim, batch_size = modality["dim"], modality["batch_size"]
        out = np.zeros((len(values), dim + modality["missing_indicator"]), dtype=np.float32)
        session = self._session(modality["name"])
        failed = []
        for start in range(0, len(values), batch_size):
            chunk = values[start : start + batch_size]
            images, failures = read_cells(chunk, prep)
            if failures and modality["on_error"] == "raise":
                i, cause = failures[0]
                raise ValueError(cell_error(
                    column, rows[start + i], chunk[i], cause,
                    "pass on_error='zero' to embed such rows as zeros",
                ))
            if len(failures) < len(images):
                pixels = prep.batch(images).numpy()
                out[start : start + len(chunk), :dim] = session.run(None, {"pixels": pixels})[0]
            for i, _ in failures:
                out[start + i, :dim] = 0.0
                failed.append(start + i)
        if failed:
            warn(
                f"ImageEmbedder: {len(failed)} of {len(values)} rows of column {column!r} "
                f"could not be read and were embedded as zeros (first: row "
                f"{plain(rows[failed[0]])!r}).",
                UserWarning,
            )
            if modality["missing_indicator"]:
                out[failed, -1] = 1.0
        return out

    def _embed_texts(self, modality, cells):
        import pandas as pd

        from ..text._input import clean_texts
        from ._export import tokenize

        values, column, rows = column_values(cells)
        texts, missing = clean_texts(values, column, rows, modality["encoding"])
        if missing.any():
            warn(
                f"TextEmbedder: {int(missing.sum())} of {len(texts)} rows of column "
                f"{column!r} are missing or empty (first: row "
                f"{plain(rows[int(np.argmax(missing))])!r}) and are embedded as the empty "
                "string.",
                UserWarning,
            )
        codes, distinct = pd.factorize(texts)
        # longest first, in batches of similar length, as TextEmbedder does
        order = np.argsort([-len(text) for text in distinct], kind="stable")
        tokenizer = self.tokenizers[modality["name"]]
        session = self._session(modality["name"])
        dim, batch_size = modality["dim"], modality["batch_size"]
        embeddings = np.empty((len(distinct), dim), dtype=np.float32)
        for start in range(0, len(distinct), batch_size):
            batch = order[start : start + batch_size]
            tokens = tokenize(tokenizer, [distinct[i] for i in batch], modality["max_length"])
            embeddings[batch] = session.run(None, {k: tokens[k] for k in modality["keys"]})[0]
        out = np.empty((len(texts), dim + modality["missing_indicator"]), dtype=np.float32)
        out[:, :dim] = embeddings[codes]
        if modality["missing_indicator"]:
            out[:, dim] = missing
        return out

    def _session(self, name):
        session = self._sessions.get(name)
        if session is None:
            import onnxruntime as ort

            options = ort.SessionOptions()
            if self.n_threads is not None:
                options.intra_op_num_threads = int(self.n_threads)
            session = ort.InferenceSession(
                self.models[name].SerializeToString(), options,
                providers=self.providers or ["CPUExecutionProvider"],
            )
            self._sessions[name] = session
        return session

    def __getstate__(self):
        state = dict(vars(self))
        state["_sessions"] = {}
        return state

    # -- files -----------------------------------------------------------------

    def save(self, path):
        """Write the graphs, tokenizers and settings to the directory ``path``.

        ``path/skmm_onnx.json`` holds the settings; each graph is an ``.onnx``
        file (``head.onnx``, ``modality1.onnx``, ...) and each tokenizer a
        folder, written by its ``save_pretrained``.

        Parameters
        ----------
        path : str or path-like
            A directory, created if needed.
        """
        import onnx

        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        files = {}
        for i, name in enumerate(self.models):
            stem = "head" if name == "head" else f"modality{i}"
            files[name] = f"{stem}.onnx"
            model = self.models[name]
            # protobuf cannot write a file over 2 GB: larger weights go beside it
            large = model.ByteSize() > (1 << 31) - (1 << 24)
            onnx.save_model(model, os.fspath(path / files[name]),
                            save_as_external_data=large,
                            location=f"{stem}.onnx.data" if large else None)
        tokenizers = {}
        for i, (name, tokenizer) in enumerate(self.tokenizers.items()):
            tokenizers[name] = f"tokenizer{i}"
            tokenizer.save_pretrained(os.fspath(path / tokenizers[name]))
        spec = {**self.spec, "files": files, "tokenizer_folders": tokenizers}
        (path / SPEC_FILE).write_text(json.dumps(spec, indent=1))

    @classmethod
    def load(cls, path, *, providers=None, n_threads=None):
        """Read an exported pipeline written by :meth:`save`.

        Parameters
        ----------
        path : str or path-like
            The directory.
        providers : list of str, default=None
            onnxruntime execution providers; None runs on the CPU.
        n_threads : int, default=None
            Threads of each onnxruntime session; None: onnxruntime's default.

        Returns
        -------
        exported : OnnxPipeline
        """
        import onnx

        path = Path(path)
        try:
            spec = json.loads((path / SPEC_FILE).read_text())
        except FileNotFoundError:
            raise FileNotFoundError(
                f"{os.fspath(path)!r} holds no exported pipeline ({SPEC_FILE} not found); "
                "write one with export_onnx(pipeline).save(path)"
            ) from None
        if spec.get("format") != FORMAT:
            raise ValueError(
                f"{os.fspath(path)!r} was written in format {spec.get('format')!r}; this "
                f"version of skmm reads format {FORMAT}: export the pipeline again"
            )
        files = spec.pop("files")
        folders = spec.pop("tokenizer_folders")
        models = {name: onnx.load_model(os.fspath(path / file)) for name, file in files.items()}
        tokenizers = {}
        if folders:
            from transformers import AutoTokenizer

            tokenizers = {name: AutoTokenizer.from_pretrained(os.fspath(path / folder))
                          for name, folder in folders.items()}
        return cls(spec, models, tokenizers, providers=providers, n_threads=n_threads)


def _tuple(value):
    return None if value is None else tuple(value)


def _column_block(X, spec):
    """The table columns of a head input, as the ONNX tensor it takes."""
    from ._graphs import MISSING

    frame = X[spec["columns"]]
    if spec["type"] == "string":
        import pandas as pd

        values = frame.to_numpy(dtype=object)
        missing = pd.isna(values)
        out = np.empty(values.shape, dtype=object)
        for index, value in np.ndenumerate(values):
            out[index] = MISSING if missing[index] else (
                value if isinstance(value, str) else str(value))
        return out
    try:
        return frame.to_numpy(dtype=np.float32)
    except (TypeError, ValueError):
        for column in spec["columns"]:
            for row, value in frame[column].items():
                try:
                    float(value)
                except (TypeError, ValueError):
                    raise ValueError(cell_error(
                        column, row, value, "expected a number",
                        "give the column the numbers it was fit on",
                    )) from None
        raise
