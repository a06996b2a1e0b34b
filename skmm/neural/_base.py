"""Neural estimators on fused features: NeuralClassifier and NeuralRegressor.

Both are skorch nets (``NeuralNetClassifier`` / ``NeuralNetRegressor``), so
callbacks, ``module__``/``optimizer__`` routing, ``history_``, ``partial_fit``
and ``warm_start`` work as in skorch. What they add: the network is built in
``fit`` from the data (an MLP on a feature matrix, or late-fusion heads on
``MultimodalFuser(output="dict")``), labels of any type, class and sample
weights, seeding, a fast in-memory batch path, and clear input errors.
"""

import contextlib
import functools
import inspect
import math
import numbers
import warnings
from collections.abc import Mapping
from types import MappingProxyType

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from sklearn.base import BaseEstimator, is_classifier
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Hidden, Interval, StrOptions
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import (
    check_array,
    check_consistent_length,
    check_is_fitted,
    column_or_1d,
    validate_data,
)
from skorch import NeuralNet, NeuralNetClassifier, NeuralNetRegressor
from skorch.callbacks import Callback, EarlyStopping, EpochScoring, PrintLog
from skorch.dataset import get_len, unpack_data
from skorch.exceptions import DeviceWarning
from skorch.utils import data_from_dataset, is_dataset, to_numpy, to_tensor

from .._utils.device import autocast_dtype, resolve_device, seeded
from .._utils.validation import (
    check_labels,
    did_you_mean,
    is_modality_dict,
    plain,
    renamed,
    validate_params,
)
from ..fusion._networks import ACTIVATIONS, FUSIONS, FusionNet, MLPNet, ModalityFusion
from ._data import (
    InMemoryDataset,
    TensorBatchLoader,
    device_type,
    first_non_finite,
    place,
    to_block,
)

NEURAL_PRECISIONS = ("float32", "auto", "bfloat16")
# early_stopping="auto" holds out at least this many rows, or does not stop early
_AUTO_MIN_VALID = 20
# torch optimizers with a fused implementation on CPU and CUDA
_FUSED_OPTIMIZERS = (torch.optim.Adam, torch.optim.AdamW, torch.optim.SGD, torch.optim.Adagrad)


def _takes_weight_decay(optimizer):
    """Whether a torch optimizer class has a ``weight_decay`` option (LBFGS has
    none; a trimmed net's optimizer is None)."""
    try:
        return "weight_decay" in inspect.signature(optimizer).parameters
    except (TypeError, ValueError):
        return False


def _valid_callbacks(callbacks):
    if callbacks is None or (isinstance(callbacks, str) and callbacks == "disable"):
        return True
    return isinstance(callbacks, (list, tuple))


def _read_only(array):
    return isinstance(array, np.ndarray) and not array.flags.writeable


class _PrintLog(PrintLog):
    """skorch's PrintLog, minus formatting a table per epoch that nobody reads
    (``verbose=0`` with the default sink)."""

    def on_epoch_end(self, net, **kwargs):
        if net.verbose or self.sink is not print:
            super().on_epoch_end(net, **kwargs)


def _with_defaults(callbacks, net):
    """Our default callbacks: skorch's, a quiet print log, early stopping if on."""
    callbacks = [
        (name, _PrintLog() if name == "print_log" else callback) for name, callback in callbacks
    ]
    if net._early_stopping_on():
        callbacks.insert(-1, ("early_stopping", EarlyStopping(
            monitor="valid_loss", patience=net.n_iter_no_change, load_best=True,
        )))
    return callbacks


class _NeuralMixin:
    """What NeuralClassifier and NeuralRegressor add to their skorch base."""

    # skorch sets these in __init__; scikit-learn wants __init__ to set only
    # the parameters, so they are class-level defaults that fit replaces.
    initialized_ = False
    history_ = None
    virtual_params_ = MappingProxyType({})

    __repr__ = BaseEstimator.__repr__

    def _get_params_html(self, deep=True, doc_link=""):
        # The HTML repr's table: the net's own parameters (those of __init__
        # and the routed ones the user passed, e.g. module__dropout), as the
        # text repr. get_params(deep=True) adds an entry for each parameter
        # of each callback (skorch's defaults alone make 22 callbacks__*
        # rows) and of each modality, values the table already shows in the
        # callbacks and modalities rows.
        return super()._get_params_html(deep=False, doc_link=doc_link)

    @property
    def _default_callbacks(self):
        return _with_defaults(super()._default_callbacks, self)

    def modality_weights(self, X=None):
        """The weight of each modality in the learned fusion.

        Parameters
        ----------
        X : dict of str to array-like or DataFrame, default=None
            Needed with ``fusion="attention"`` and ``"gated"``, whose weights
            depend on the row.

        Returns
        -------
        weights : dict of str to float or ndarray of shape (n_samples,)
            For ``"weighted"``, the softmax weights (summing to 1); for
            ``"attention"``, each row's attention over the modalities
            (summing to 1 per row); for ``"gated"``, each row's gates in (0, 1).
        """
        return _modality_weights(self, X)

    def _train(self, dataset, y, routing, fit_params):
        """skorch's training loop (its ``partial_fit``), with KeyboardInterrupt
        ending training early and leaving a usable model (``_interrupted``
        then says so)."""
        self._interrupted = False
        return super().partial_fit(dataset, y, _routing_method=routing, **fit_params)

    def fit_loop(self, X, y=None, epochs=None, **fit_params):
        try:
            return super().fit_loop(X, y, epochs=epochs, **fit_params)
        except KeyboardInterrupt:
            self._interrupted = True  # skorch's partial_fit swallows it
            raise

    def _raw_outputs(self, X):
        """The network's outputs for X, through skorch's batched inference."""
        return super().predict_proba(X)

    def _is_internal_data(self, X):
        """True for the estimator's own dataset (outputs stay in its internal
        target space: class indices, scaled targets)."""
        return is_dataset(X)

    def _store_extra_params(self, kwargs):
        # skorch's routed parameters (module__*, optimizer__*, callbacks__*...)
        history = kwargs.pop("history", None)
        if history is not None:  # skorch's history=: the History instance to fill
            vars(self)["history_"] = history
        self._params_to_validate = set(kwargs)
        vars(self).update(kwargs)

    def __setattr__(self, name, value):
        # skorch registers torch components set outside __init__; it tells
        # __init__ by a missing initialized_, which here is a class default
        # until initialize() sets it: a subclass's __init__ may set modules
        constructing = ("initialized_" not in vars(self)
                        and getattr(self, "init_context_", None) is None)
        if constructing and not name.endswith("_"):
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)

    def _get_param_names(self):
        return [k for k in vars(self) if not k.endswith("_") and not k.startswith("_")]

    # -- parameters ----------------------------------------------------------

    _parameter_constraints = {
        "activation": [StrOptions(set(ACTIVATIONS))],
        "dropout": [Interval(numbers.Real, 0, 1, closed="left")],
        "fusion": [StrOptions(set(FUSIONS))],
        "fusion_width": [Interval(numbers.Integral, 1, None, closed="left")],
        "validation_fraction": [Interval(numbers.Real, 0, 1, closed="neither")],
        "early_stopping": ["boolean", StrOptions({"auto"})],
        "batch_norm": ["boolean"],
        "n_iter_no_change": [Interval(numbers.Integral, 1, None, closed="left")],
        "precision": [StrOptions({*NEURAL_PRECISIONS, "float16"})],
        "amp": ["boolean", Hidden(StrOptions({"deprecated"}))],
        "label_smoothing": [Interval(numbers.Real, 0, 1, closed="left")],
        "weight_decay": [Interval(numbers.Real, 0, None, closed="left"), StrOptions({"auto"})],
    }

    def _check_params(self):
        hidden = self.hidden_units
        if isinstance(hidden, numbers.Integral):
            hidden = (hidden,)
        if not (
            isinstance(hidden, (tuple, list))
            and all(isinstance(h, numbers.Integral) and h >= 1 for h in hidden)
        ):
            raise ValueError(
                "hidden_units must be a tuple of positive ints (one per hidden layer, "
                f"() for none), got {self.hidden_units!r}"
            )
        validate_params(self)
        # amp is validated as a boolean (numpy's included) above
        precision = renamed(self, "amp", "precision", lambda amp: "auto" if amp else "float32")
        if isinstance(precision, str) and precision == "float16":
            raise ValueError(
                "precision='float16' is not available for training (it needs loss "
                "scaling); use 'bfloat16', 'auto' or 'float32'"
            )
        self.precision_ = precision
        if not _valid_callbacks(self.callbacks):
            raise ValueError(
                "callbacks must be None, 'disable' or a list of skorch callbacks or "
                f"(name, callback) pairs, got {self.callbacks!r}"
            )

    # -- device --------------------------------------------------------------

    @contextlib.contextmanager
    def _device_resolved(self):
        """skorch reads ``self.device`` to place modules and outputs: while it
        works, "auto" (or None) reads as the device this fit resolved."""
        requested = self.__dict__.get("device")
        explicit = requested is not None and not (
            isinstance(requested, str) and requested == "auto"
        )
        if explicit or "device_" not in self.__dict__:
            yield
            return
        self.__dict__["device"] = self.device_
        try:
            yield
        finally:
            self.__dict__["device"] = requested

    def initialize(self):
        """Initialize callbacks, module, criterion and optimizer (done by fit)."""
        if "device_" not in self.__dict__:
            self.device_ = resolve_device(self.device)
        with self._device_resolved():
            return super().initialize()

    def set_params(self, **params):
        """Set parameters; ``module__*`` and ``criterion__*`` rebuild a fitted net."""
        deferred = "callbacks" in params and not (
            self.initialized_ and _valid_callbacks(params["callbacks"])
        )
        if deferred and not any(key.startswith("callbacks__") for key in params):
            # skorch initializes the callbacks right away; before fit (or for a
            # bad value) they are only stored, and fit checks and builds them
            self.callbacks = params.pop("callbacks")
        with self._device_resolved():
            return super().set_params(**params)

    def load_params(self, *args, **kwargs):
        """Load saved parameters into a fitted net (see skorch's ``load_params``)."""
        with self._device_resolved():
            return super().load_params(*args, **kwargs)

    def __setstate__(self, state):
        requested = state.get("device")
        if requested is None or (isinstance(requested, str) and requested == "auto"):
            # Map the tensors to the device it was trained on when that exists
            # here, else to the CPU, without skorch's warning: "auto" asked
            # for whatever is available.
            state = dict(state)
            state["device"] = state.get("device_", "cpu")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeviceWarning)
                super().__setstate__(state)
            if "device_" in state:
                self.device_ = str(self.__dict__["device"])
            self.__dict__["device"] = requested
        else:
            super().__setstate__(state)
            if "device_" in state:
                self.device_ = str(self.__dict__["device"])

    @property
    def _device_type(self):
        return device_type(self.device_)

    def _release_device_memory(self):
        if torch.device(self.device_).type == "cuda":
            torch.cuda.empty_cache()

    def get_params_for_optimizer(self, prefix, named_parameters):
        """skorch's routing of ``optimizer__*``, with fused kernels by default.

        Adam, AdamW, SGD and Adagrad run their fused implementation on CPU and
        CUDA (the same update in one kernel per step rather than a dozen; on a
        small network the optimizer step is a third of the training time).
        ``optimizer__fused=False`` or ``optimizer__foreach=...`` opts out.
        """
        args, kwargs = super().get_params_for_optimizer(prefix, named_parameters)
        decay = self.__dict__.get("weight_decay_")
        if (prefix == "optimizer" and decay is not None and "weight_decay" not in kwargs
                and _takes_weight_decay(self.optimizer)):
            # 0 too: AdamW's own default is 0.01
            kwargs["weight_decay"] = decay
        if (
            prefix == "optimizer"
            and self.optimizer in _FUSED_OPTIMIZERS
            and not {"fused", "foreach", "differentiable"} & kwargs.keys()
            and self._device_type in ("cpu", "cuda")
        ):
            kwargs["fused"] = True
        return args, kwargs

    # -- module, criterion, loss ---------------------------------------------

    def initialize_module(self):
        """Build the network for the data seen in fit (or the ``module`` given)."""
        if self.module is not None:
            return super().initialize_module()
        if "input_shape_" not in self.__dict__:
            raise ValueError(
                f"{type(self).__name__} builds its network from the data: call "
                "fit(X, y) rather than initialize()."
            )
        kwargs = dict(
            n_outputs=self._n_network_outputs(),
            hidden_units=self._hidden_units,
            activation=self.activation,
            dropout=self.dropout,
            batch_norm=self.batch_norm,
        )
        if self.modalities_ is None:
            module_class = MLPNet
            kwargs["n_features"] = self.input_shape_
        else:
            module_class = FusionNet
            kwargs.update(
                input_dims=dict(self.input_shape_),
                fusion=self.fusion,
                fusion_width=self.fusion_width,
                n_heads=4 if self.fusion_width % 4 == 0 else 1,
            )
        kwargs.update(self.get_params_for("module"))
        self.module_ = module_class(**kwargs)
        return self

    @property
    def _hidden_units(self):
        hidden = self.hidden_units
        return (int(hidden),) if isinstance(hidden, numbers.Integral) else tuple(hidden)

    def initialize_criterion(self):
        """Instantiate the criterion with ``reduction="none"`` (when it has that
        option and none was given), so that sample weights apply per row, and
        a classifier's ``label_smoothing`` (when the criterion takes it and
        ``criterion__label_smoothing`` is not given)."""
        kwargs = self.get_params_for("criterion")
        criterion = self.criterion
        if isinstance(criterion, type):
            try:
                accepted = inspect.signature(criterion).parameters
            except (TypeError, ValueError):
                accepted = {}
            if "reduction" in accepted:
                kwargs.setdefault("reduction", "none")
            if "label_smoothing" in accepted and hasattr(self, "label_smoothing"):
                kwargs.setdefault("label_smoothing", float(self.label_smoothing))
        self.criterion_ = self.initialized_instance(criterion, kwargs)
        return self

    def _set_training(self, training=True):
        # skorch calls this for every batch; switching only the modules whose
        # mode differs skips a recursive walk per batch (a fifth of the
        # per-batch overhead on a small MLP).
        for name in self._modules + self._criteria:
            module = getattr(self, name + "_")
            if isinstance(module, torch.nn.Module) and module.training != training:
                module.train(training)

    def infer(self, x, **fit_params):
        """Run the module on one batch (a tensor, or a dict of tensors by modality)."""
        if not isinstance(x, torch.Tensor) or x.device.type != self._device_type:
            x = to_tensor(x, device=self.device_)
        with self._autocast():
            if isinstance(x, Mapping):
                out = self.module_(**self._merge_x_and_fit_params(x, fit_params))
            else:
                out = self.module_(x, **fit_params)
        return full_precision(out)

    def _fusion_inputs(self, x, module=None):
        """What the fusion sees for a batch: the modalities' tensors, on the device."""
        return to_tensor(x, device=self.device_)

    def _autocast(self):
        """Autocast of the forward passes: ``precision`` on this device ("auto":
        bfloat16 on a GPU that has it, float32 elsewhere)."""
        dtype = _autocast_dtype(getattr(self, "precision_", "float32"), self.device_)
        if dtype is None or dtype == torch.float16:  # float16 would need loss scaling
            return contextlib.nullcontext()
        return torch.autocast(self._device_type, dtype=dtype)

    def get_loss(self, y_pred, y_true, X=None, training=False, sample_weight=None):
        """The batch loss: the criterion per row, weighted by ``sample_weight``
        (sample and class weights, normalized to mean 1 over the training set),
        averaged over the batch."""
        if not isinstance(y_true, torch.Tensor) or y_true.device.type != self._device_type:
            y_true = to_tensor(y_true, device=self.device_)
        if sample_weight is not None and sample_weight.device.type != self._device_type:
            sample_weight = sample_weight.to(self.device_)
        if isinstance(y_pred, torch.Tensor) and y_pred.dtype != torch.float32:
            y_pred = y_pred.float()
        if sample_weight is None:
            loss = _criterion_mean(self.criterion_, y_pred, y_true)
            if loss is not None:
                return loss
        loss = self.criterion_(y_pred, y_true)
        if loss.dim() == 0:
            if sample_weight is not None:
                raise ValueError(
                    "the criterion returns one number per batch, so sample_weight and "
                    "class_weight cannot weigh its rows; use a criterion with "
                    "reduction='none' (e.g. criterion__reduction='none')."
                )
            return loss
        if loss.dim() > 1:
            loss = loss.reshape(loss.shape[0], -1).mean(dim=1)
        if sample_weight is not None:
            loss = loss * sample_weight
        return loss.mean()

    def train_step_single(self, batch, **fit_params):
        """Forward, loss (with the batch's sample weights) and backward."""
        self._set_training(True)
        Xi, yi = unpack_data(batch)
        y_pred = self.infer(Xi, **fit_params)
        loss = self.get_loss(y_pred, yi, X=Xi, training=True, **_weights_of(batch))
        loss.backward()
        return {"loss": loss, "y_pred": y_pred}

    def train_step(self, batch, **fit_params):
        """One optimizer step on a batch: zero the gradients, then forward,
        loss and backward (``train_step_single``), then the optimizer's step.

        skorch hands the optimizer a closure and notifies ``on_grad_computed``
        in it; that is kept for the optimizers that may evaluate the loss more
        than once (LBFGS, optimizers from outside ``torch.optim``), for nets
        with several optimizers (skorch runs the closure for each) and when
        something reads the gradients. torch's other optimizers evaluate a
        closure exactly once, first, so calling it before their step is the
        same computation, without the closure's bookkeeping.
        """
        if self._needs_step_closure():
            return super().train_step(batch, **fit_params)
        self._zero_grad_optimizer()
        step = self.train_step_single(batch, **fit_params)
        self._step_optimizer(None)
        return step

    def _needs_step_closure(self):
        if (len(self._optimizers) != 1
                or type(self).get_train_step_accumulator is not NeuralNet.get_train_step_accumulator
                or _acts_on(self, "on_grad_computed", NeuralNet)
                or any(_acts_on(cb, "on_grad_computed") for _, cb in self.callbacks_)):
            return True
        optimizer = getattr(self, self._optimizers[0] + "_")
        return (not type(optimizer).__module__.startswith("torch.optim.")
                or isinstance(optimizer, torch.optim.LBFGS))

    def run_single_epoch(self, iterator, training, prefix, step_fn, **fit_params):
        """Run ``step_fn`` over the batches of one epoch and record each batch's
        loss and size in ``history_``, as skorch does.

        skorch reads every batch's loss as it comes (``.item()``), which makes
        the CPU wait for the device at every batch. When nothing acts on
        single batches (no callback with ``on_batch_begin``/``on_batch_end``
        for this phase: the default callbacks act on epochs), the losses stay
        on the device and are read once, at the end of the epoch, before the
        epoch's callbacks see them. Each batch still gets its entry in the
        history before its step, so a step may record values of its own.
        """
        if iterator is None:
            return
        if self._acts_on_batches(training):
            super().run_single_epoch(iterator, training, prefix, step_fn, **fit_params)
            return
        entries = self.history[-1]["batches"]
        first = len(entries)
        done = []  # (loss tensor, batch size)
        try:
            for batch in iterator:
                self.history.new_batch()
                step = step_fn(batch, **fit_params)
                done.append((step["loss"].detach(), _batch_len(batch)))
        except KeyboardInterrupt:  # skorch ends training there: keep the batches done
            _record_batches(entries[first:], prefix, done)
            raise
        _record_batches(entries[first:], prefix, done)
        self.history.record(prefix + "_batch_count", len(done))

    def _acts_on_batches(self, training):
        """Whether the net or a callback does more with single batches of this
        phase than skorch's recording of them in ``history_``."""
        if (_acts_on(self, "notify", NeuralNet) or _acts_on(self, "on_batch_begin", NeuralNet)
                or _acts_on(self, "on_batch_end", NeuralNet)):
            return True
        for _, callback in self.callbacks_:
            if _acts_on(callback, "on_batch_begin"):
                return True
            end = getattr(getattr(callback, "on_batch_end", None), "__func__", None)
            # EpochScoring caches the predictions of its own phase only
            if not (end is Callback.on_batch_end
                    or (end is EpochScoring.on_batch_end and training != callback.on_train)):
                return True
        return False

    def validation_step(self, batch, **fit_params):
        """Forward and loss (with the batch's sample weights), without gradients."""
        self._set_training(False)
        Xi, yi = unpack_data(batch)
        with torch.no_grad():
            y_pred = self.infer(Xi, **fit_params)
            loss = self.get_loss(y_pred, yi, X=Xi, training=False, **_weights_of(batch))
        return {"loss": loss, "y_pred": y_pred}

    # -- data ----------------------------------------------------------------

    def check_data(self, X, y):
        # fit validates X and y itself before skorch's loop sees them
        pass

    def _check_X(self, X, reset):
        """Validate X; return its blocks (float32 tensors or CSR matrices) and
        its number of rows."""
        name = type(self).__name__
        if is_modality_dict(X):
            if reset:
                for attr in ("n_features_in_", "feature_names_in_"):
                    self.__dict__.pop(attr, None)
            elif "modalities_" in self.__dict__ and self.modalities_ is None:
                raise ValueError(
                    f"{name} was fit on a feature matrix but got a dict of modalities; "
                    "pass the same kind of input as in fit."
                )
            return self._check_modalities(X, reset)
        if not reset and self.__dict__.get("modalities_") is not None:
            raise ValueError(
                f"{name} was fit on the modalities {self.modalities_} (a dict, as "
                "MultimodalFuser(output='dict') returns) but got "
                f"{type(X).__name__}; pass the same kind of input as in fit."
            )
        X = validate_data(self, X, accept_sparse="csr", dtype=(np.float32, np.float64),
                          ensure_all_finite=False, reset=reset)
        block = self._finite_float32(X, "X")
        if reset:
            self.modalities_ = None
            self.input_shape_ = block.shape[1]
        return block, block.shape[0]

    def _check_modalities(self, X, reset):
        name = type(self).__name__
        if not X:
            raise ValueError(f"{name} got an empty dict of modalities")
        names = list(X)
        # (a net initialized with a module and loaded, not fit, knows no modalities)
        known = not reset and "modalities_" in self.__dict__
        if known:
            expected = self.modalities_
            missing = [m for m in expected if m not in X]
            extra = [m for m in names if m not in expected]
            if missing:
                hint = did_you_mean(missing[0], extra) if extra else ""
                raise ValueError(
                    f"modality {missing[0]!r} is missing from X; {name} was fit on the "
                    f"modalities {expected}, got {names}.{hint}"
                )
            if extra:
                raise ValueError(
                    f"X has the modality {extra[0]!r} that {name} was not fit on; the "
                    f"modalities are {expected}."
                )
            names = expected
        blocks, n_rows = {}, None
        for modality in names:
            if not isinstance(modality, str):
                raise TypeError(f"modality names must be strings, got {modality!r}")
            value = X[modality]
            if hasattr(value, "to_numpy") and not sp.issparse(value):
                value = value.to_numpy()
            array = check_array(value, accept_sparse="csr", dtype=(np.float32, np.float64),
                                ensure_all_finite=False, input_name=f"X[{modality!r}]")
            block = self._finite_float32(array, f"modality {modality!r}")
            if n_rows is None:
                n_rows, first = block.shape[0], modality
            elif block.shape[0] != n_rows:
                raise ValueError(
                    f"modality {modality!r} has {block.shape[0]} rows but {first!r} has "
                    f"{n_rows}; every modality needs one row per sample."
                )
            if known and block.shape[1] != self.input_shape_[modality]:
                raise ValueError(
                    f"modality {modality!r} has {block.shape[1]} features, but {name} "
                    f"was fit with {self.input_shape_[modality]}."
                )
            blocks[modality] = block
        if reset:
            self.modalities_ = names
            self.input_shape_ = {m: int(b.shape[1]) for m, b in blocks.items()}
        return blocks, n_rows

    def _finite_float32(self, array, what):
        if sp.issparse(array):
            array = sp.csr_matrix(array, dtype=np.float32)
        else:
            array = np.asarray(array, dtype=np.float32)
            if _read_only(array):
                array = array.copy()
        bad = first_non_finite(array)
        if bad is not None:
            row, col, value = bad
            kind = "NaN" if np.isnan(value) else "infinity"
            raise ValueError(
                f"{what} contains {kind} at row {row}, column {col} (value {value!r}; "
                "values beyond the float32 range become infinity); "
                f"{type(self).__name__} cannot train or predict on NaN or infinity. "
                "Impute missing values first, e.g. with sklearn.impute.SimpleImputer in "
                "the pipeline (inside the modality's transformer for a "
                "MultimodalFuser)."
            )
        return to_block(array)

    def _to_dataset(self, blocks, y=None, sample_weight=None):
        device = self.device_
        if is_modality_dict(blocks):
            blocks = {name: place(block, device) for name, block in blocks.items()}
        else:
            blocks = place(blocks, device)
        if y is not None:
            y = place(torch.from_numpy(y), device)
        if sample_weight is not None:
            sample_weight = place(torch.from_numpy(sample_weight), device)
        return InMemoryDataset(blocks, y, sample_weight, device=device)

    def get_dataset(self, X, y=None):
        """The in-memory dataset of X (validated as in fit), for prediction."""
        if is_dataset(X):
            return X
        check_is_fitted(self)
        if "dataset" in vars(self):
            return NeuralNet.get_dataset(self, X, y)
        blocks, _ = self._check_X(X, reset=False)
        return self._to_dataset(blocks)

    def get_iterator(self, dataset, training=False):
        """Batches of ``dataset``: ``iterator_train`` (shuffled by default) when
        training, else ``iterator_valid``."""
        if training:
            kwargs = self.get_params_for("iterator_train")
            iterator = self.iterator_train
        else:
            kwargs = self.get_params_for("iterator_valid")
            iterator = self.iterator_valid
        kwargs.setdefault("batch_size", self.batch_size)
        if kwargs["batch_size"] == -1:
            kwargs["batch_size"] = len(dataset)
        if isinstance(iterator, type) and issubclass(iterator, TensorBatchLoader):
            kwargs.setdefault("shuffle", training)
            if not isinstance(dataset, InMemoryDataset):
                iterator = torch.utils.data.DataLoader  # a user's torch Dataset
        elif isinstance(dataset, InMemoryDataset) and dataset.sample_weight is not None:
            raise ValueError(
                "sample_weight and class_weight reach the loss through the batches of "
                "the default iterator (TensorBatchLoader); with "
                f"{getattr(iterator, '__name__', iterator)!r} they would be ignored. "
                "Use the default iterator_train/iterator_valid, or drop the weights."
            )
        return iterator(dataset, **kwargs)

    def get_split_datasets(self, X, y=None, **fit_params):
        """Training and validation datasets: ``train_split`` when given, else a
        ``validation_fraction`` hold-out when ``early_stopping``, else none."""
        dataset = self.get_dataset(X, y)
        if self.train_split:  # None or False: no split
            if y is None:
                parts = self.train_split(dataset, **fit_params)
            else:
                parts = self.train_split(dataset, y, **fit_params)
            return tuple(self._as_in_memory(dataset, part) for part in parts)
        if not self._early_stopping_on():
            return dataset, None
        train, valid = self._holdout_indices(y)
        return dataset.subset(train), dataset.subset(valid)

    def _as_in_memory(self, parent, part):
        if part is None or isinstance(part, InMemoryDataset):
            return part
        if isinstance(part, torch.utils.data.Subset) and part.dataset is parent:
            if not isinstance(parent, InMemoryDataset):
                return part  # rows of a user's Dataset
            return parent.subset(part.indices)
        if not isinstance(parent, InMemoryDataset):
            return part
        # e.g. skorch.helper.predefined_split(Dataset(X_valid, y_valid))
        try:
            X, y = data_from_dataset(part)
        except AttributeError:  # a torch Dataset of its own: used as it is
            return part
        blocks, n_rows = self._check_X(X, reset=False)
        y, _ = self._check_y(y, n_rows, reset=False)
        return self._to_dataset(blocks, y)

    def _early_stopping_on(self):
        """Whether fits stop early: ``early_stopping_`` once a fit resolved
        "auto", else a plain True (get_params reads this before fit checks
        the parameter)."""
        resolved = self.__dict__.get("early_stopping_")
        if resolved is not None:
            return resolved
        return isinstance(self.early_stopping, (bool, np.bool_)) and bool(self.early_stopping)

    def _resolve_early_stopping(self, y):
        """Set ``early_stopping_`` for this fit: "auto" stops early when no
        ``train_split`` is given and y allows a hold-out of at least
        ``_AUTO_MIN_VALID`` rows (stratified: every class twice or more, and
        as many rows as classes on each side)."""
        setting = self.early_stopping
        if not (isinstance(setting, str) and setting == "auto"):
            self.early_stopping_ = bool(setting)
            return
        self.early_stopping_ = False
        if self.train_split or y is None:
            return
        n = len(y)
        n_valid = math.ceil(self.validation_fraction * n)
        if n_valid < _AUTO_MIN_VALID or n - n_valid < _AUTO_MIN_VALID:
            return
        if is_classifier(self):
            # the labels as given (a user's Dataset) or their indices
            _, counts = np.unique(np.asarray(y), return_counts=True)
            if counts.min() < 2 or min(n_valid, n - n_valid) < len(counts):
                return
        self.early_stopping_ = True

    def _settle_weight_decay(self, n_rows, reset):
        """Resolve ``weight_decay`` at a fresh fit: "auto" is ``1 / n_rows``;
        an optimizer without a ``weight_decay`` option (LBFGS) gets none from
        "auto" and an error from a number."""
        if self.initialized_ and not reset:
            return
        decay = self.weight_decay
        accepted = _takes_weight_decay(self.optimizer)
        if isinstance(decay, str):
            decay = 1.0 / max(n_rows, 1) if accepted else 0.0
        elif decay and not accepted and self.optimizer is not None:
            raise ValueError(
                f"weight_decay={decay!r}: {getattr(self.optimizer, '__name__', self.optimizer)} "
                "has no weight_decay option; set weight_decay=0 or 'auto'."
            )
        self.weight_decay_ = float(decay)

    def _settle_early_stopping(self, y, reset):
        """Resolve ``early_stopping`` at a fresh fit; a net initialized before
        its first fit keeps what its callbacks were built with."""
        if reset or "early_stopping_" not in self.__dict__:
            if not reset and self.initialized_:
                self.early_stopping_ = "early_stopping" in dict(self.callbacks_)
            else:
                self._resolve_early_stopping(y)

    def _holdout_indices(self, y):
        from sklearn.model_selection import ShuffleSplit, StratifiedShuffleSplit

        n = len(y)
        n_valid = math.ceil(self.validation_fraction * n)
        name = type(self).__name__
        if is_classifier(self):
            counts = np.bincount(y, minlength=len(self.classes_))
            if counts.min() < 2:
                label = plain(self.classes_[int(np.argmin(counts))])
                raise ValueError(
                    f"class {label!r} has {counts.min()} sample(s) in y: early_stopping="
                    f"True holds out a stratified validation_fraction="
                    f"{self.validation_fraction} and needs at least 2 samples of every "
                    "class. Add samples of that class, drop it, or set "
                    "early_stopping=False."
                )
            if n_valid < len(counts) or n - n_valid < len(counts):
                raise ValueError(
                    f"early_stopping=True with validation_fraction="
                    f"{self.validation_fraction} holds out {n_valid} of {n} samples, "
                    f"but a stratified split of {len(counts)} classes needs at least "
                    f"{len(counts)} on each side; raise validation_fraction, add "
                    "samples, or set early_stopping=False."
                )
            splitter = StratifiedShuffleSplit(1, test_size=n_valid, random_state=self._split_seed)
        else:
            if n_valid >= n:
                raise ValueError(
                    f"{name} with early_stopping=True needs at least 2 samples to hold "
                    f"out a validation set, got {n}."
                )
            splitter = ShuffleSplit(1, test_size=n_valid, random_state=self._split_seed)
        train, valid = next(splitter.split(np.zeros((n, 1)), y))
        return train, valid

    def _check_sample_weight(self, sample_weight, n_rows):
        if sample_weight is None:
            return None
        weights = np.asarray(sample_weight, dtype=np.float64)
        if weights.ndim == 0:
            weights = np.full(n_rows, float(weights))
        if weights.shape != (n_rows,):
            raise ValueError(
                f"sample_weight.shape == {weights.shape}, expected ({n_rows},): one "
                "weight per sample."
            )
        if not np.isfinite(weights).all() or (weights < 0).any():
            row = int(np.flatnonzero(~(np.isfinite(weights) & (weights >= 0)))[0])
            raise ValueError(
                f"sample_weight must be finite and non-negative; row {row} is "
                f"{weights[row]!r}."
            )
        if weights.sum() <= 0:
            raise ValueError(
                "sample_weight is zero for every sample; at least one sample must weigh."
            )
        return weights

    # -- training ------------------------------------------------------------

    def _draw_seed(self, reset):
        if self.random_state is None:
            return None
        seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        if not reset and self.history_ is not None:
            # continuing (warm_start, partial_fit): fresh shuffles and dropout
            seed = (seed + 1_000_003 * len(self.history_)) % np.iinfo(np.int32).max
        return seed

    def _as_user_dataset(self, X, y, sample_weight, *, reset, classes):
        """X as skorch takes a torch Dataset (or builds one with ``dataset=``):
        its items are the rows as they are, its labels not encoded. Returns
        ``(dataset, y for the split)``."""
        name = type(self).__name__
        if sample_weight is not None or getattr(self, "class_weight", None) is not None:
            raise ValueError(
                f"{name} weighs rows through its own batches; with a torch Dataset as X "
                "(or dataset=), sample_weight and class_weight are not supported. Pass "
                "arrays to weigh rows."
            )
        if self.module is None:
            raise ValueError(
                f"{name} builds its network from arrays; with a torch Dataset as X (or "
                "dataset=), pass module= (a torch module class or instance), as in skorch."
            )
        dataset = X if is_dataset(X) else NeuralNet.get_dataset(self, X, y)
        if reset:
            for attr in ("n_features_in_", "feature_names_in_"):
                self.__dict__.pop(attr, None)
            self.modalities_ = None
            self.input_shape_ = None
        self._dataset_targets(dataset, y, reset=reset, classes=classes)
        return dataset, y

    def _fit(self, X, y, sample_weight, fit_params, *, reset, routing, classes=None):
        self._check_params()
        if reset or "device_" not in self.__dict__:
            self.device_ = resolve_device(self.device)
        if (self.precision_ == "bfloat16" and torch.device(self.device_).type == "cuda"
                and not torch.cuda.is_bf16_supported()):
            raise ValueError(
                f"precision='bfloat16': {torch.cuda.get_device_name()} does not support "
                "bfloat16; use precision='auto' or 'float32'."
            )
        if is_dataset(X) or "dataset" in vars(self):
            dataset, y_split = self._as_user_dataset(X, y, sample_weight, reset=reset,
                                                     classes=classes)
        else:
            blocks, n_rows = self._check_X(X, reset=reset)
            y_internal, y_split = self._check_y(y, n_rows, reset=reset, classes=classes)
            weights = self._training_weights(
                self._check_sample_weight(sample_weight, n_rows), y_internal
            )
            if self.batch_norm and n_rows < 2:
                raise ValueError("batch_norm=True needs at least 2 samples to train on.")
            dataset = self._to_dataset(blocks, y_internal, weights)
        seed = self._draw_seed(reset)
        self._split_seed = None if seed is None else seed % (2**31 - 1)
        self._settle_early_stopping(y_split, reset)
        self._settle_weight_decay(len(dataset), reset)
        try:
            with self._device_resolved(), seeded(seed, self.device_):
                if reset or not self.initialized_:
                    self.initialize()
                self._train(dataset, y_split, routing, fit_params)
        finally:
            del dataset
            self._release_device_memory()
        return self


_SKORCH_PARAMS_DOC = """
    criterion : torch loss class or instance, default={criterion}
        Built with ``reduction="none"`` so that sample and class weights apply
        per row.
    optimizer : torch optimizer class, default=torch.optim.Adam
        Its options go through ``optimizer__*`` (e.g. ``optimizer__weight_decay``).
        Adam, AdamW, SGD and Adagrad use their fused kernels on CPU and CUDA
        unless ``optimizer__fused`` or ``optimizer__foreach`` is given.
    lr : float, default=1e-3
        Learning rate.
    weight_decay : float or "auto", default="auto"
        The optimizer's ``weight_decay`` (for Adam, an L2 penalty of
        ``weight_decay / 2`` times the squared weights on the mean loss).
        "auto" is ``1 / n_samples`` of the fit: the penalty
        ``LogisticRegression()`` (C=1) puts on each row's loss, so the network
        is held back as much as the linear model with its defaults, more on
        few rows than on many (none for an optimizer without the option,
        such as LBFGS). ``weight_decay_`` is the value a fit used; an
        ``optimizer__weight_decay`` given as well takes precedence.
    max_epochs : int, default=30
        Passes over the training data.
    batch_size : int, default=128
        Rows per batch; -1 for the whole training set.
    iterator_train, iterator_valid : class, default=TensorBatchLoader
        How batches are cut: the default slices in-memory tensors, shuffling
        the training rows every epoch (``iterator_train__shuffle=False`` to
        keep the order). A plain ``torch.utils.data.DataLoader`` works too
        (slower, and without sample weights).
    train_split : callable or None, default=None
        skorch's validation split, e.g. ``skorch.dataset.ValidSplit(5)`` or
        ``skorch.helper.predefined_split(skorch.dataset.Dataset(X_val, y_val))``;
        when None, ``early_stopping`` decides.
    callbacks : list of (name, callback) or "disable", default=None
        skorch callbacks, added to the defaults (epoch timer, losses{valid_acc},
        early stopping when on, print log). Reachable with ``callbacks__*``.
    predict_nonlinearity : callable, "auto" or None, default="auto"
        Applied to the network's outputs by ``predict_proba``; "auto" picks
        the softmax for cross-entropy.
    warm_start : bool, default=False
        If True, ``fit`` continues training the fitted network instead of
        building a new one.
    verbose : int, default=0
        1 prints a table of the losses after every epoch.
    device : "auto", str or torch.device, default="auto"
        "auto" trains on CUDA when available, else on the CPU (the choice is
        ``device_``). A pickled net loads on a CPU-only machine.
    compile : bool, default=False
        ``torch.compile`` the module.
    use_caching : bool or "auto", default="auto"
        Scoring callbacks reuse the predictions of the validation pass.
    torch_load_kwargs : dict or None, default=None
        Passed to ``torch.load`` when unpickling."""

_KWARGS_DOC = """
    **kwargs
        Routed parameters as in skorch: ``module__*`` (extra arguments of the
        module, e.g. ``module__n_heads``), ``optimizer__*``, ``criterion__*``,
        ``iterator_train__*``, ``iterator_valid__*``, ``callbacks__*``."""

_OWN_PARAMS_DOC = """
    module : torch.nn.Module class or instance, default=None
        None builds the network in ``fit`` from the data: an MLP on a feature
        matrix, or ``ModalityFusion`` followed by an MLP on a dict of
        modalities. A module given here is used as in skorch (with
        ``module__*`` arguments); on dict input it is called as
        ``module(**{modality: tensor})``. With a module, X may also be a torch
        ``Dataset`` (or ``dataset=`` may build one), used as skorch uses it:
        its items go to the module and the loss as they are (labels not
        encoded, no sample or class weights).
    hidden_units : tuple of int, default=(512,)
        Width of each hidden layer of the MLP; ``()`` for a linear model.
    activation : {"relu", "gelu", "silu", "tanh", "leaky_relu"}, default="relu"
    dropout : float, default=0.5
        Dropout after each hidden layer (and each modality encoder). With
        the defaults (a wide layer, dropout 0.5 and ``weight_decay="auto"``)
        the network does not fall below ``LogisticRegression()`` on the same
        fused features: on the bundled products (``benchmarks/bench_fusion.py``'s
        neural column, TF-IDF titles) and with MiniLM titles
        (``benchmarks/bench_neural_defaults.py``), where 256 units without
        dropout or decay lost up to 0.009 to it on ``season``.
    batch_norm : bool, default=False
        Batch normalization after each hidden layer's linear map.
    fusion : {"concat", "weighted", "attention", "gated"}, default="concat"
        How the modalities of a dict input are fused after their encoders (to
        ``fusion_width`` each): concatenation, learned softmax weights,
        attention of a learned query over the modality tokens, or a gated
        sum. Ignored for a feature matrix. Searchable with GridSearchCV.
    fusion_width : int, default=128
        Width of each modality's encoding."""

_SHARED_TAIL_DOC = """
    early_stopping : bool or "auto", default="auto"
        Hold out a random ``validation_fraction`` of the training rows
        {stratified}and stop when the validation loss has not improved for
        ``n_iter_no_change`` epochs, keeping the best epoch's weights (up to
        ``max_epochs``). "auto": on when the hold-out has at least 20 rows
        (and, for a classifier, every class can be on both sides) and no
        ``train_split`` is given; ``early_stopping_`` says what a fit did.
        A network trained a fixed number of epochs memorises noisy labels:
        with 30% of the bundled products' training labels changed to another class
        (``benchmarks/bench_neural_defaults.py``, scored on the true labels),
        fixed epochs lose up to 0.025 to LogisticRegression on the same
        fused features and early stopping wins on two of three targets;
        with every label true it costs 0.004 at most against fixed epochs.
        False trains every fit of a search for exactly ``max_epochs`` on all
        its rows.
    validation_fraction : float, default=0.1
        Share of the training rows held out by ``early_stopping``.
    n_iter_no_change : int, default=5
        Patience of ``early_stopping``, in epochs.
    random_state : int, RandomState instance or None, default=None
        Seeds the weights, dropout, shuffling and validation split: two fits
        with the same int give the same predictions (on the same device and
        torch build). None uses torch's global generator.
    precision : {{"float32", "auto", "bfloat16"}}, default="float32"
        Autocast precision of the forward passes. "auto" is bfloat16 on a GPU
        that has it (faster on recent GPUs) and float32 elsewhere.
    amp : bool
        Deprecated: ``amp=True`` is ``precision="auto"``, ``amp=False``
        ``precision="float32"``."""


class _ClassifierMixin:
    """What the neural classifiers share: labels of any type, class weights,
    probabilities that sum to 1, labels out of ``predict``."""

    @property
    def classes_(self):
        try:
            return self.classes_inferred_
        except AttributeError:
            if self.initialized_:
                raise AttributeError(
                    f"{type(self).__name__} could not infer the classes from y; this "
                    "error probably occurred because the net was trained without y "
                    "and some function tried to access the '.classes_' attribute; a "
                    "possible solution is to provide the 'classes' argument when "
                    f"initializing {type(self).__name__}"
                ) from None
            raise AttributeError(
                f"{type(self).__name__} has no classes_ before fit"
            ) from None

    def _dataset_targets(self, dataset, y, *, reset, classes):
        """The classes of a torch Dataset's labels: ``classes=``, else those of
        y, else those the dataset exposes (as skorch infers them)."""
        if not (reset or "classes_inferred_" not in self.__dict__):
            return
        given = classes if classes is not None else self.classes
        if given is not None and len(given):
            labels = np.asarray(given)
        elif y is not None:
            labels = np.unique(to_numpy(y))
        else:
            try:
                labels = np.unique(to_numpy(data_from_dataset(dataset)[1]))
            except AttributeError:  # the labels are out of reach; as skorch, go on
                self.__dict__.pop("classes_inferred_", None)
                return
        self.classes_inferred_ = labels

    def fit(self, X, y, sample_weight=None, **fit_params):
        """Build the network for X and train it (continue, with ``warm_start``).

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_samples, n_features), or dict
            A feature matrix, or ``{modality: block}`` as
            ``MultimodalFuser(output="dict")`` returns.
        y : array-like of shape (n_samples,)
            Class labels of any type.
        sample_weight : array-like of shape (n_samples,), default=None
            Weight of each sample in the loss (metadata routing:
            ``set_fit_request(sample_weight=True)``).
        **fit_params : dict
            Passed to the module's forward, as in skorch.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        reset = not (self.warm_start and self.initialized_)
        return self._fit(X, y, sample_weight, fit_params, reset=reset, routing="fit")

    def partial_fit(self, X, y, classes=None, sample_weight=None, **fit_params):
        """Train for ``max_epochs`` more epochs, building the network on the first call.

        Parameters
        ----------
        X, y, sample_weight, **fit_params
            As in :meth:`fit`.
        classes : array-like of shape (n_classes,), default=None
            All the labels, on the first call when y does not show them all.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        fit_params.pop("_routing_method", None)
        return self._fit(X, y, sample_weight, fit_params, reset=not self.initialized_,
                         routing="partial_fit", classes=classes)

    def _n_network_outputs(self):
        return len(self.classes_)

    def _check_y(self, y, n_rows, reset, classes=None):
        """Encode y as class indices; return (indices as int64, the same for splits)."""
        name = type(self).__name__
        if y is None:
            raise ValueError(f"{name} requires y to be passed, but the target y is None.")
        if isinstance(y, (pd.Series, np.ndarray, list, tuple)):
            check_labels(y)  # before check_array, whose errors depend on the dtype
        y = check_array(y, ensure_2d=False, dtype=None, input_name="y")
        y = column_or_1d(y, warn=True)
        check_consistent_length(np.empty(n_rows), y)
        if y.dtype == object:
            if len({type(label) for label in y}) > 1:
                kinds = sorted({type(label).__name__ for label in y})
                raise ValueError(
                    f"y mixes label types ({', '.join(kinds)}); use one type, e.g. "
                    "y.astype(str)."
                )
        check_classification_targets(y)
        # (a net initialized with a module, or loaded, learns its classes on its
        # first partial_fit, as in skorch)
        if reset or "classes_inferred_" not in self.__dict__:
            given = classes if classes is not None else self.classes
            if given is not None and len(given):
                labels = np.asarray(given)
                if len(np.unique(labels)) != len(labels):
                    raise ValueError(f"classes has repeated labels: {list(given)}")
            else:
                labels = np.unique(y)
            if len(labels) < 2:
                raise ValueError(
                    f"{name} needs at least 2 classes, but y has only one class "
                    f"({plain(labels[0])!r})."
                )
            self.classes_inferred_ = labels
        labels = self.classes_
        order = np.argsort(labels, kind="stable")
        sorted_labels = labels[order]
        position = np.clip(np.searchsorted(sorted_labels, y), 0, len(labels) - 1)
        unseen = sorted_labels[position] != y
        if unseen.any():
            row = int(np.flatnonzero(unseen)[0])
            raise ValueError(
                f"y has the label {plain(y[row])!r} (row {row}) that is not one of the classes "
                f"{labels.tolist()}; on the first partial_fit, pass classes= with every "
                "label."
            )
        encoded = order[position].astype(np.int64)
        return encoded, encoded

    def _training_weights(self, sample_weight, y):
        weights = sample_weight
        if self.class_weight is not None:
            per_class = self._class_weights(y)
            weights = per_class[y] if weights is None else weights * per_class[y]
        if weights is None:
            return None
        return (weights / weights.mean()).astype(np.float32)

    def _class_weights(self, y):
        n_classes = len(self.classes_)
        if isinstance(self.class_weight, str) and self.class_weight == "balanced":
            counts = np.bincount(y, minlength=n_classes).astype(np.float64)
            present = counts > 0
            weights = np.ones(n_classes)
            weights[present] = len(y) / (present.sum() * counts[present])
            return weights
        if not isinstance(self.class_weight, Mapping):
            raise ValueError(
                "class_weight must be None, 'balanced' or a dict {label: weight}, got "
                f"{self.class_weight!r}"
            )
        weights = np.ones(n_classes)
        labels = self.classes_.tolist()
        for label, weight in self.class_weight.items():
            if label not in labels:
                raise ValueError(
                    f"class_weight has the label {label!r}, which is not one of the "
                    f"classes {labels}"
                )
            if not (isinstance(weight, numbers.Real) and np.isfinite(weight) and weight >= 0):
                raise ValueError(
                    f"class_weight[{label!r}] must be a non-negative number, got {weight!r}"
                )
            weights[labels.index(label)] = weight
        return weights

    def predict_proba(self, X):
        """Class probabilities: the softmax of the network's logits.

        Parameters
        ----------
        X : array-like, sparse matrix or dict of them
            As in :meth:`fit`.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Columns in the order of ``classes_``.
        """
        check_is_fitted(self)
        out = self._raw_outputs(X)
        nonlinearity = self.predict_nonlinearity
        if isinstance(nonlinearity, str) and nonlinearity == "auto":
            return as_probabilities(out)
        return out  # the user's predict_nonlinearity (or None): its outputs as they are

    def predict(self, X):
        """The most probable class of each sample.

        Parameters
        ----------
        X : array-like, sparse matrix or dict of them
            As in :meth:`fit`.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            Labels from ``classes_``.
        """
        index = self.predict_proba(X).argmax(axis=1)
        classes = getattr(self, "classes_", None)
        if classes is None and self.classes is not None and len(self.classes):
            classes = np.asarray(self.classes)
        if self._is_internal_data(X) or classes is None:
            return index  # (a net initialized and loaded, not fit: as skorch, indices)
        return classes[index]

    def get_loss(self, y_pred, y_true, X=None, training=False, sample_weight=None):
        """The batch loss (see :class:`NeuralRegressor`'s); ``NLLLoss`` gets
        log-probabilities: the log-softmax of skmm's networks' logits, or the
        log of your module's probabilities, as skorch takes it."""
        if isinstance(self.criterion_, torch.nn.NLLLoss) and isinstance(y_pred, torch.Tensor):
            y_pred = y_pred.float()
            if self.module is None:
                y_pred = torch.log_softmax(y_pred, dim=-1)
            else:
                y_pred = torch.log(y_pred + torch.finfo(y_pred.dtype).eps)
        return super().get_loss(y_pred, y_true, X=X, training=training,
                                sample_weight=sample_weight)

    def _get_predict_nonlinearity(self):
        # skmm's networks output logits whatever the criterion: softmax them
        if (self.module is None and isinstance(self.predict_nonlinearity, str)
                and self.predict_nonlinearity == "auto"
                and isinstance(self.criterion_, torch.nn.NLLLoss)):
            return _softmax
        return super()._get_predict_nonlinearity()

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.input_tags.allow_nan = False
        tags.classifier_tags.multi_label = False
        return tags


class _RegressorMixin:
    """What the neural regressors share: 1-D or 2-D targets, standardised for
    training and mapped back by ``predict``."""

    def _dataset_targets(self, dataset, y, *, reset, classes):
        # a torch Dataset's targets are used as they are: no scaling
        if reset:
            self.target_mean_, self.target_scale_ = np.zeros(1), np.ones(1)
            self.n_outputs_, self.y_ndim_ = None, None

    def fit(self, X, y, sample_weight=None, **fit_params):
        """Build the network for X and train it (continue, with ``warm_start``).

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_samples, n_features), or dict
            A feature matrix, or ``{modality: block}`` as
            ``MultimodalFuser(output="dict")`` returns.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        sample_weight : array-like of shape (n_samples,), default=None
            Weight of each sample in the loss.
        **fit_params : dict
            Passed to the module's forward, as in skorch.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        reset = not (self.warm_start and self.initialized_)
        return self._fit(X, y, sample_weight, fit_params, reset=reset, routing="fit")

    def partial_fit(self, X, y, classes=None, sample_weight=None, **fit_params):
        """Train for ``max_epochs`` more epochs, building the network on the first call.

        Parameters
        ----------
        X, y, sample_weight, **fit_params
            As in :meth:`fit`.
        classes : None
            Unused: skorch's ``partial_fit`` signature (its metadata routing
            declares it), kept so that routing works in pipelines.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        if classes is not None:
            raise ValueError(f"{type(self).__name__} has no classes; pass classes=None")
        fit_params.pop("_routing_method", None)
        return self._fit(X, y, sample_weight, fit_params, reset=not self.initialized_,
                         routing="partial_fit")

    def _n_network_outputs(self):
        return self.n_outputs_

    def _check_y(self, y, n_rows, reset, classes=None):
        """Return y as scaled float32 of shape (n, n_outputs), twice (the second
        for splits)."""
        name = type(self).__name__
        if y is None:
            raise ValueError(f"{name} requires y to be passed, but the target y is None.")
        y = check_array(y, ensure_2d=False, dtype=np.float64, input_name="y")
        if y.ndim not in (1, 2):
            raise ValueError(f"y must be 1-D or 2-D, got shape {y.shape}")
        check_consistent_length(np.empty(n_rows), y)
        y2 = y.reshape(len(y), -1)
        if reset:
            self.n_outputs_ = y2.shape[1]
            self.y_ndim_ = y.ndim
            if self.scale_target:
                self.target_mean_ = y2.mean(axis=0)
                scale = y2.std(axis=0)
                self.target_scale_ = np.where(scale > 0, scale, 1.0)
            else:
                self.target_mean_ = np.zeros(y2.shape[1])
                self.target_scale_ = np.ones(y2.shape[1])
        elif y2.shape[1] != self.n_outputs_:
            raise ValueError(
                f"y has {y2.shape[1]} outputs, but {name} was fit with {self.n_outputs_}."
            )
        scaled = ((y2 - self.target_mean_) / self.target_scale_).astype(np.float32)
        return scaled, scaled

    def _training_weights(self, sample_weight, y):
        if sample_weight is None:
            return None
        return (sample_weight / sample_weight.mean()).astype(np.float32)

    def predict(self, X):
        """Predicted targets, in the units of y.

        Parameters
        ----------
        X : array-like, sparse matrix or dict of them
            As in :meth:`fit`.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            The shape of y in fit.
        """
        check_is_fitted(self)
        out = self._raw_outputs(X)
        if self._is_internal_data(X) or self.n_outputs_ is None:
            return out  # (a net fit on a torch Dataset: the module's outputs, as skorch)
        out = out.reshape(len(out), self.n_outputs_).astype(np.float64)
        out = out * self.target_scale_ + self.target_mean_
        return out.ravel() if self.y_ndim_ == 1 else out

    def get_loss(self, y_pred, y_true, X=None, training=False, sample_weight=None):
        """As the classifier's, after matching a module's ``(n,)`` output to
        ``(n, 1)`` targets (broadcast, the pair would give an ``(n, n)`` loss
        that trains every prediction towards the batch mean)."""
        if (isinstance(y_pred, torch.Tensor) and y_pred.ndim == 1
                and tuple(y_true.shape) == (len(y_pred), 1)):
            y_pred = y_pred[:, None]
        return super().get_loss(y_pred, y_true, X=X, training=training,
                                sample_weight=sample_weight)

    @available_if(lambda self: False)
    def predict_proba(self, X):
        """Not available: use predict."""

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.input_tags.allow_nan = False
        tags.target_tags.multi_output = True
        return tags


class NeuralClassifier(_ClassifierMixin, _NeuralMixin, NeuralNetClassifier):
    __doc__ = (
        """A neural network classifier on fused features, built in ``fit``.

    A skorch ``NeuralNetClassifier`` whose network comes from the data: an MLP
    on a feature matrix (``MultimodalFuser`` with the default
    ``output="array"``), or one encoder per modality fused by
    ``ModalityFusion`` then an MLP on a dict of modalities
    (``MultimodalFuser(output="dict")``). It outputs logits trained with
    cross-entropy, so ``predict_proba`` is their softmax; labels may be of any
    type (strings, ints), two classes or more. Batches are slices of
    in-memory tensors (on the GPU when there is one) rather than skorch's
    per-row loading, so a batch costs what it costs in a hand-written loop.

    Parameters
    ----------"""
        + _OWN_PARAMS_DOC
        + """
    class_weight : dict, "balanced" or None, default=None
        Weight of each class in the loss, by label; "balanced" weighs classes
        by ``n_samples / (n_classes * count)``. Multiplies ``sample_weight``.
    label_smoothing : float in [0, 1), default=0.1
        The training target of a row puts ``1 - label_smoothing`` on its
        class and spreads the rest evenly over all classes (torch's
        ``CrossEntropyLoss(label_smoothing=...)``; a criterion without that
        argument, such as ``NLLLoss``, or a criterion instance is used as
        given). A network then does not drive its logits apart to memorise
        every training row: on the fused features of the bundled products
        (``benchmarks/bench_fusion.py``'s neural column) 0.1 scores 0.004 to
        0.024 higher than 0 on five of six targets and the same on the
        sixth. Predicted probabilities of clear-cut rows then settle near
        ``1 - label_smoothing * (n_classes - 1) / n_classes`` (0.95 for two
        classes) rather than 1: set 0 for probabilities that can reach 1."""
        + _SHARED_TAIL_DOC.format(stratified="(stratified by class) ")
        + _SKORCH_PARAMS_DOC.format(criterion="torch.nn.CrossEntropyLoss",
                                    valid_acc=", validation accuracy")
        + """
    classes : array-like or None, default=None
        The labels, in the order of ``predict_proba``'s columns; None takes
        the sorted labels of y."""
        + _KWARGS_DOC
        + """

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The class labels.
    module_ : torch.nn.Module
        The trained network.
    early_stopping_ : bool
        Whether the last fit held out a validation split and stopped early
        (``early_stopping`` resolved).
    weight_decay_ : float
        The optimizer's weight decay in the last fit (``weight_decay``
        resolved).
    history_ : skorch.History
        Losses and timings by epoch and batch.
    device_ : str
        The device the network trained on.
    modalities_ : list of str or None
        The modalities of a dict input, in order; None for a feature matrix.
    input_shape_ : int or dict of str to int
        Number of input features, or the width of each modality.
    n_features_in_ : int
        Number of features of a feature-matrix input.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Column names, when fit on a DataFrame.

    See Also
    --------
    NeuralRegressor : the same for continuous targets.
    MultimodalFuser : builds the features (``output="dict"`` for late fusion).

    Notes
    -----
    Sample and class weights multiply each row's loss; they are normalized
    to mean 1 over the training rows, so their scale does not change the
    learning rate. Inputs must be finite: NaN or infinity raise an error
    naming the row and column. Scoring callbacks see the labels encoded as
    ``0..n_classes-1`` and, on the net's internal datasets, ``predict``
    answers in that encoding too, so built-in scorers compare like with like.

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from skmm import NeuralClassifier
    >>> X, y = make_classification(200, n_features=8, random_state=0)
    >>> clf = NeuralClassifier(hidden_units=(32,), max_epochs=20, lr=0.01,
    ...                        random_state=0).fit(X, y)
    >>> clf.predict_proba(X[:2]).shape
    (2, 2)
    >>> bool(clf.score(X, y) > 0.9)
    True
    """
    )

    def __init__(
        self,
        module=None,
        *,
        hidden_units=(512,),
        activation="relu",
        dropout=0.5,
        batch_norm=False,
        fusion="concat",
        fusion_width=128,
        class_weight=None,
        label_smoothing=0.1,
        early_stopping="auto",
        validation_fraction=0.1,
        n_iter_no_change=5,
        random_state=None,
        precision="float32",
        amp="deprecated",
        criterion=torch.nn.CrossEntropyLoss,
        optimizer=torch.optim.Adam,
        lr=1e-3,
        weight_decay="auto",
        max_epochs=30,
        batch_size=128,
        iterator_train=TensorBatchLoader,
        iterator_valid=TensorBatchLoader,
        train_split=None,
        callbacks=None,
        predict_nonlinearity="auto",
        warm_start=False,
        verbose=0,
        device="auto",
        compile=False,
        use_caching="auto",
        torch_load_kwargs=None,
        classes=None,
        **kwargs,
    ):
        vars(self)["module"] = module  # an instance too: past skorch's __setattr__
        self.hidden_units = hidden_units
        self.activation = activation
        self.dropout = dropout
        self.batch_norm = batch_norm
        self.fusion = fusion
        self.fusion_width = fusion_width
        self.class_weight = class_weight
        self.label_smoothing = label_smoothing
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.random_state = random_state
        self.precision = precision
        self.amp = amp
        vars(self)["criterion"] = criterion
        self.optimizer = optimizer
        self.lr = lr
        self.weight_decay = weight_decay
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.iterator_train = iterator_train
        self.iterator_valid = iterator_valid
        self.train_split = train_split
        self.callbacks = callbacks
        self.predict_nonlinearity = predict_nonlinearity
        self.warm_start = warm_start
        self.verbose = verbose
        self.device = device
        self.compile = compile
        self.use_caching = use_caching
        self.torch_load_kwargs = torch_load_kwargs
        self.classes = classes
        self._store_extra_params(kwargs)


class NeuralRegressor(_RegressorMixin, _NeuralMixin, NeuralNetRegressor):
    __doc__ = (
        """A neural network regressor on fused features, built in ``fit``.

    A skorch ``NeuralNetRegressor`` whose network comes from the data: an MLP
    on a feature matrix, or one encoder per modality fused by
    ``ModalityFusion`` then an MLP on a dict of modalities
    (``MultimodalFuser(output="dict")``). Targets may be 1-D or 2-D (several
    outputs); by default they are standardized for training and predictions
    mapped back, so targets in any unit train with the default learning rate.

    Parameters
    ----------"""
        + _OWN_PARAMS_DOC
        + """
    scale_target : bool, default=True
        Train on ``(y - mean) / std`` (per output) and map predictions back.
        Losses in ``history_`` are then in standardized units."""
        + _SHARED_TAIL_DOC.format(stratified="")
        + _SKORCH_PARAMS_DOC.format(criterion="torch.nn.MSELoss", valid_acc="")
        + _KWARGS_DOC
        + """

    Attributes
    ----------
    module_ : torch.nn.Module
        The trained network.
    early_stopping_ : bool
        Whether the last fit held out a validation split and stopped early
        (``early_stopping`` resolved).
    weight_decay_ : float
        The optimizer's weight decay in the last fit (``weight_decay``
        resolved).
    history_ : skorch.History
        Losses and timings by epoch and batch.
    device_ : str
        The device the network trained on.
    n_outputs_ : int
        Number of targets.
    y_ndim_ : int
        1 or 2: the shape of y in fit, which ``predict`` returns.
    target_mean_, target_scale_ : ndarray of shape (n_outputs_,)
        The standardization of y (0 and 1 when ``scale_target=False``).
    modalities_ : list of str or None
        The modalities of a dict input, in order; None for a feature matrix.
    input_shape_ : int or dict of str to int
        Number of input features, or the width of each modality.
    n_features_in_ : int
        Number of features of a feature-matrix input.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Column names, when fit on a DataFrame.

    See Also
    --------
    NeuralClassifier : the same for class labels.

    Examples
    --------
    >>> from sklearn.datasets import make_regression
    >>> from skmm import NeuralRegressor
    >>> X, y = make_regression(200, n_features=5, noise=1.0, random_state=0)
    >>> reg = NeuralRegressor(hidden_units=(32,), max_epochs=30, lr=0.01,
    ...                       random_state=0).fit(X, y)
    >>> reg.predict(X[:3]).shape
    (3,)
    >>> bool(reg.score(X, y) > 0.9)
    True
    """
    )

    def __init__(
        self,
        module=None,
        *,
        hidden_units=(512,),
        activation="relu",
        dropout=0.5,
        batch_norm=False,
        fusion="concat",
        fusion_width=128,
        scale_target=True,
        early_stopping="auto",
        validation_fraction=0.1,
        n_iter_no_change=5,
        random_state=None,
        precision="float32",
        amp="deprecated",
        criterion=torch.nn.MSELoss,
        optimizer=torch.optim.Adam,
        lr=1e-3,
        weight_decay="auto",
        max_epochs=30,
        batch_size=128,
        iterator_train=TensorBatchLoader,
        iterator_valid=TensorBatchLoader,
        train_split=None,
        callbacks=None,
        predict_nonlinearity="auto",
        warm_start=False,
        verbose=0,
        device="auto",
        compile=False,
        use_caching="auto",
        torch_load_kwargs=None,
        **kwargs,
    ):
        vars(self)["module"] = module  # an instance too: past skorch's __setattr__
        self.hidden_units = hidden_units
        self.activation = activation
        self.dropout = dropout
        self.batch_norm = batch_norm
        self.fusion = fusion
        self.fusion_width = fusion_width
        self.scale_target = scale_target
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.random_state = random_state
        self.precision = precision
        self.amp = amp
        vars(self)["criterion"] = criterion
        self.optimizer = optimizer
        self.lr = lr
        self.weight_decay = weight_decay
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.iterator_train = iterator_train
        self.iterator_valid = iterator_valid
        self.train_split = train_split
        self.callbacks = callbacks
        self.predict_nonlinearity = predict_nonlinearity
        self.warm_start = warm_start
        self.verbose = verbose
        self.device = device
        self.compile = compile
        self.use_caching = use_caching
        self.torch_load_kwargs = torch_load_kwargs
        self._store_extra_params(kwargs)


@functools.cache
def _autocast_dtype(precision, device):
    # (once per fit rather than per batch: it may ask the GPU what it supports)
    return autocast_dtype(precision, torch.device(device))


# torch losses whose reduction="mean" is the mean of their reduction="none"
# output (for CrossEntropyLoss and NLLLoss, only without class weights, which
# make it a weighted mean)
_ROW_MEAN_LOSSES = (
    torch.nn.CrossEntropyLoss, torch.nn.NLLLoss, torch.nn.MSELoss, torch.nn.L1Loss,
    torch.nn.SmoothL1Loss, torch.nn.HuberLoss, torch.nn.BCEWithLogitsLoss, torch.nn.BCELoss,
)


def _criterion_mean(criterion, y_pred, y_true):
    """The mean of a ``reduction="none"`` criterion's losses, by its own
    ``"mean"`` reduction: one fused kernel, forward and backward, instead of
    the per-row losses and their mean (a tenth of a small network's training
    step). None when the criterion's mean would be another number (class
    weights, a criterion of its own). As in torch, rows whose label is the
    criterion's ``ignore_index`` (possible with a torch Dataset only: skmm's
    class indices are never negative) are left out of that mean."""
    if (type(criterion) not in _ROW_MEAN_LOSSES or criterion.reduction != "none"
            or getattr(criterion, "weight", None) is not None):
        return None
    # reduction is a plain attribute: set past Module.__setattr__, whose checks
    # for parameters and submodules cost more than a small batch's loss
    object.__setattr__(criterion, "reduction", "mean")
    try:
        return criterion(y_pred, y_true)
    finally:
        object.__setattr__(criterion, "reduction", "none")


def _acts_on(obj, hook, base=Callback):
    """Whether ``obj.hook`` is other than ``base``'s (a no-op for callbacks)."""
    return getattr(getattr(obj, hook, None), "__func__", None) is not getattr(base, hook)


def _record_batches(entries, prefix, done):
    """Write the ``(loss, size)`` of the batches done into their history entries."""
    if not done:
        return
    losses = torch.stack([loss for loss, _ in done]).tolist()
    for entry, loss, (_, size) in zip(entries[: len(done)], losses, done, strict=True):
        entry[prefix + "_loss"] = loss
        entry[prefix + "_batch_size"] = size


def _batch_len(batch):
    x = batch[0] if isinstance(batch, (tuple, list)) else batch
    return x.shape[0] if isinstance(x, torch.Tensor) else get_len(x)


def _softmax(y_pred):
    return torch.softmax(y_pred, dim=-1)


def _weights_of(batch):
    """``{"sample_weight": ...}`` for a weighted batch, else nothing, so that a
    ``get_loss`` overridden with skorch's signature still works unweighted."""
    weights = getattr(batch, "sample_weight", None)
    return {} if weights is None else {"sample_weight": weights}


def full_precision(out):
    """A module's output with its bfloat16/float16 tensors (from autocast) as
    float32: the loss is computed in full precision and the predictions
    convert to NumPy, which has no bfloat16."""
    if isinstance(out, torch.Tensor):
        return out.float() if out.dtype in (torch.bfloat16, torch.float16) else out
    if isinstance(out, Mapping):
        return {key: full_precision(value) for key, value in out.items()}
    if isinstance(out, (tuple, list)):
        return type(out)(full_precision(value) for value in out)
    return out


def as_probabilities(proba):
    """A float32 softmax as float64 rows that sum to 1 in float64.

    A float32 softmax cast to float64 sums to 1 only within about 1e-7, which
    scikit-learn's log-loss scorers warn about.
    """
    proba = np.asarray(proba, dtype=np.float64)
    return proba / proba.sum(axis=1, keepdims=True)


def _modality_weights(net, X):
    """The fusion's modality weights, averaged over the members of an ensemble."""
    check_is_fitted(net)
    members = list(getattr(net.module_, "members", [net.module_]))
    fusion = getattr(members[0], "fusion", None)
    if not isinstance(fusion, ModalityFusion):
        raise ValueError(
            "modality weights exist for a net fit on a dict of modalities "
            "(MultimodalFuser(output='dict')) with the default module"
        )
    if fusion.fusion == "concat":
        raise ValueError(
            "fusion='concat' learns no modality weights; use 'weighted', 'attention' "
            "or 'gated' to inspect them"
        )
    net._set_training(False)
    if fusion.fusion == "weighted":
        return {name: float(np.mean([member.fusion.modality_weights()[name].item()
                                     for member in members]))
                for name in fusion.names}
    if X is None:
        raise ValueError(
            f"fusion={fusion.fusion!r} weighs each row differently: pass X to get the "
            "weights of its rows"
        )
    parts = {name: [] for name in fusion.names}
    for batch in net.get_iterator(net.get_dataset(X), training=False):
        inputs, _ = batch
        each = []
        for member in members:
            with net._autocast():
                each.append(member.fusion.modality_weights(net._fusion_inputs(inputs, member)))
        for name in parts:
            parts[name].append(np.mean([w[name].float().cpu().numpy() for w in each], axis=0))
    return {name: np.concatenate(chunks) for name, chunks in parts.items()}
