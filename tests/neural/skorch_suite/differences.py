# ruff: noqa: E501  (pytest ids and reasons read best whole)
"""skorch tests that fail with skmm's estimators, and why.

Keys are pytest ids (file::Class::test[param]). "deliberate": skmm follows
scikit-learn (or refuses what would be silently wrong) where skorch differs.
"harness": the test needs files skorch does not ship. The marks are strict: a
test listed here that starts to pass fails CI, so the list stays exact.
"""

DELIBERATE_2 = "deliberate: the message names skmm's class (NeuralClassifier), not NeuralNetClassifier"
DELIBERATE_3 = 'deliberate: labels of y outside classes= raise a clear error; skorch trains on them'
DELIBERATE_4 = 'deliberate: an empty classes= is read as not given (the classes come from y); skorch then has no classes_'
DELIBERATE_5 = 'deliberate: a classifier needs two classes; the test fits labels of one class'
HARNESS_8 = "harness: skorch's wheel and sdist do not ship the test's net_cuda.pt / optimizer_cuda.pt"
DELIBERATE_9 = "deliberate: device is validated at fit ('foo' is refused), skorch accepts any string"
DELIBERATE_10 = "deliberate: a classifier's y is a 1-D array of labels, encoded to class indices; skorch hands any y to the loss untouched (pass a torch Dataset as X to do that)"
DELIBERATE_12 = "deliberate: scikit-learn's NotFittedError message, naming the estimator's class"
DELIBERATE_13 = "deliberate: before fit skmm raises scikit-learn's NotFittedError, where skorch raises NotInitializedError"
HARNESS_14 = "harness: the test's fixture reads skorch/tests/net_cuda.pkl relative to skorch's source checkout"
DELIBERATE_15 = "deliberate: device=None means 'auto' (the device it trained on when there is one, else the CPU), so unpickling does not warn"
DELIBERATE_18 = "deliberate: scikit-learn's repr (the parameters that differ from the defaults), not skorch's module summary"
DELIBERATE_19 = 'deliberate: with iterator_train=DataLoader, sample weights (BaggingRegressor passes them) would be silently ignored, so they are refused'
DELIBERATE_20 = "deliberate: a module's (n,) output is matched to (n, 1) targets; skorch trains against the (n, n) broadcast, which torch warns about"
DELIBERATE_21 = "deliberate: a regressor has no predict_proba (scikit-learn's convention)"

DIFFERENCES = {
    'test_skorch_classifier.py::TestNeuralNet::test_error_when_classes_could_not_be_inferred': DELIBERATE_2,
    'test_skorch_classifier.py::TestNeuralNet::test_pass_classes_explicitly_overrides': DELIBERATE_3,
    'test_skorch_classifier.py::TestNeuralNet::test_pass_empty_classes_raises[classes0]': DELIBERATE_4,
    'test_skorch_classifier.py::TestNeuralNet::test_pass_empty_classes_raises[classes1]': DELIBERATE_4,
    'test_skorch_net.py::TestMetadataRouting::test_undeclared_param_rejected_by_routing': DELIBERATE_5,
    'test_skorch_net.py::TestNeuralNet::test_load_cuda_params_to_cpu[f_optimizer-optimizer_cuda.pt]': HARNESS_8,
    'test_skorch_net.py::TestNeuralNet::test_load_cuda_params_to_cpu[f_params-net_cuda.pt]': HARNESS_8,
    'test_skorch_net.py::TestNeuralNet::test_moving_custom_modules_to_device': DELIBERATE_9,
    'test_skorch_net.py::TestNeuralNet::test_net_variable_label_lengths': DELIBERATE_10,
    'test_skorch_net.py::TestNeuralNet::test_net_variable_prediction_lengths': DELIBERATE_10,
    'test_skorch_net.py::TestNeuralNet::test_not_fitted_raises': DELIBERATE_12,
    'test_skorch_net.py::TestNeuralNet::test_not_init_raises[forward]': DELIBERATE_13,
    'test_skorch_net.py::TestNeuralNet::test_not_init_raises[forward_iter]': DELIBERATE_13,
    'test_skorch_net.py::TestNeuralNet::test_not_init_raises[predict]': DELIBERATE_13,
    'test_skorch_net.py::TestNeuralNet::test_not_init_raises[predict_proba]': DELIBERATE_13,
    'test_skorch_net.py::TestNeuralNet::test_pickle_load[False]': HARNESS_14,
    'test_skorch_net.py::TestNeuralNet::test_pickle_save_load_device_is_none': DELIBERATE_15,
    'test_skorch_net.py::TestNeuralNet::test_repr_fitted_works': DELIBERATE_18,
    'test_skorch_net.py::TestNeuralNet::test_repr_initialized_works': DELIBERATE_18,
    'test_skorch_net.py::TestNeuralNet::test_repr_uninitialized_works': DELIBERATE_18,
    'test_skorch_net.py::TestNeuralNet::test_set_params_on_custom_module_preserves_its_device': DELIBERATE_9,
    'test_skorch_regressor.py::TestNeuralNetRegressor::test_bagging_regressor': DELIBERATE_19,
    'test_skorch_regressor.py::TestNeuralNetRegressor::test_dimension_mismatch_warning': DELIBERATE_20,
    'test_skorch_regressor.py::TestNeuralNetRegressor::test_not_fitted_raises': DELIBERATE_12,
    'test_skorch_regressor.py::TestNeuralNetRegressor::test_not_init_raises[forward]': DELIBERATE_13,
    'test_skorch_regressor.py::TestNeuralNetRegressor::test_not_init_raises[forward_iter]': DELIBERATE_13,
    'test_skorch_regressor.py::TestNeuralNetRegressor::test_not_init_raises[predict]': DELIBERATE_13,
    'test_skorch_regressor.py::TestNeuralNetRegressor::test_not_init_raises[predict_proba]': DELIBERATE_21,
    'test_skorch_regressor.py::TestNeuralNetRegressor::test_predict_predict_proba': DELIBERATE_21,
}
