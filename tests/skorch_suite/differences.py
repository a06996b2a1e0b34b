# ruff: noqa: E501  (pytest ids and reasons read best whole)
"""skorch tests that fail with skmm's estimators, and why.

Keys are pytest ids (file::Class::test[param]). "deliberate": skmm follows
scikit-learn (or refuses what would be silently wrong) where skorch differs.
"not yet (#12)": a gap in skmm, listed so that CI catches any other failure
and a fixed one (the marks are strict), to be fixed with the neural base of
issue #12. "harness": the test needs files skorch does not ship.
"""

NOT_1 = 'not yet (#12): X must be arrays, sparse matrices, DataFrames or dicts of them; a torch Dataset is refused with a TypeError that says so'
NOT_2 = 'not yet (#12): a torch Dataset as X is refused'
DELIBERATE_3 = 'deliberate: labels of y outside classes= raise a clear error; skorch trains on them'
NOT_4 = 'not yet (#12): classes=[] is taken as not given (labels from y) instead of an error'
DELIBERATE_5 = 'deliberate: a classifier needs two classes; the test fits labels of one class'
NOT_6 = "not yet (#12): extra modules or criteria set in a subclass's initialize_* are refused (skorch's __setattr__ sees skmm's class-level initialized_)"
NOT_7 = 'not yet (#12): history= is refused'
HARNESS_8 = "harness: skorch's wheel and sdist do not ship the test's net_cuda.pt / optimizer_cuda.pt"
DELIBERATE_9 = "deliberate: device is validated at fit ('foo' is refused), skorch accepts any string"
NOT_10 = 'not yet (#12): ragged (object) labels are refused'
NOT_11 = 'not yet (#12): N-d inputs are refused by input validation'
DELIBERATE_12 = "deliberate: scikit-learn's NotFittedError message, naming the estimator's class"
DELIBERATE_13 = "deliberate: before fit skmm raises scikit-learn's NotFittedError, where skorch raises NotInitializedError"
NOT_14 = "not yet (#12): the fixture's pickled net differs (device handling on unpickling)"
NOT_15 = 'not yet (#12): unpickling with device=None gives no DeviceWarning'
NOT_16 = 'not yet (#12): the validation split is a torch Dataset, which is refused'
NOT_17 = 'not yet (#12): predict_proba renormalizes whatever predict_nonlinearity returns into rows that sum to 1'
DELIBERATE_18 = "deliberate: scikit-learn's repr (the parameters that differ from the defaults), not skorch's module summary"
DELIBERATE_19 = 'deliberate: with iterator_train=DataLoader, sample weights (BaggingRegressor passes them) would be silently ignored, so they are refused'
NOT_20 = "not yet (#12): a (n,) output against (n, 1) targets is reshaped without skorch's warning"
DELIBERATE_21 = "deliberate: a regressor has no predict_proba (scikit-learn's convention)"

DIFFERENCES = {
    'test_skorch_classifier.py::TestNeuralNet::test_classes_are_set_with_tensordataset_explicit_y': NOT_1,
    'test_skorch_classifier.py::TestNeuralNet::test_classes_are_set_with_tensordataset_implicit_y': NOT_1,
    'test_skorch_classifier.py::TestNeuralNet::test_error_when_classes_could_not_be_inferred': NOT_2,
    'test_skorch_classifier.py::TestNeuralNet::test_pass_classes_explicitly_overrides': DELIBERATE_3,
    'test_skorch_classifier.py::TestNeuralNet::test_pass_empty_classes_raises[classes0]': NOT_4,
    'test_skorch_classifier.py::TestNeuralNet::test_pass_empty_classes_raises[classes1]': NOT_4,
    'test_skorch_net.py::TestMetadataRouting::test_undeclared_param_rejected_by_routing': DELIBERATE_5,
    'test_skorch_net.py::TestNeuralNet::test_criteria_reinit_when_both_initialized_but_custom_criterion_changed': NOT_6,
    'test_skorch_net.py::TestNeuralNet::test_fit_with_dataset': NOT_1,
    'test_skorch_net.py::TestNeuralNet::test_fit_with_dataset_X_y_inaccessible_does_not_raise': NOT_1,
    'test_skorch_net.py::TestNeuralNet::test_fit_with_dataset_one_item_error': NOT_1,
    'test_skorch_net.py::TestNeuralNet::test_fit_with_dataset_stratified_without_explicit_y_raises': NOT_1,
    'test_skorch_net.py::TestNeuralNet::test_fit_with_dataset_three_items_error': NOT_1,
    'test_skorch_net.py::TestNeuralNet::test_fit_with_dataset_without_explicit_y': NOT_1,
    'test_skorch_net.py::TestNeuralNet::test_initializing_net_with_custom_history': NOT_7,
    'test_skorch_net.py::TestNeuralNet::test_load_cuda_params_to_cpu[f_optimizer-optimizer_cuda.pt]': HARNESS_8,
    'test_skorch_net.py::TestNeuralNet::test_load_cuda_params_to_cpu[f_params-net_cuda.pt]': HARNESS_8,
    'test_skorch_net.py::TestNeuralNet::test_modules_reinit_when_both_initialized_but_custom_module_changed': NOT_6,
    'test_skorch_net.py::TestNeuralNet::test_moving_custom_modules_to_device': DELIBERATE_9,
    'test_skorch_net.py::TestNeuralNet::test_net_initialized_with_custom_dataset_args': NOT_1,
    'test_skorch_net.py::TestNeuralNet::test_net_initialized_with_initalized_dataset_and_kwargs_raises': NOT_1,
    'test_skorch_net.py::TestNeuralNet::test_net_variable_label_lengths': NOT_10,
    'test_skorch_net.py::TestNeuralNet::test_net_variable_prediction_lengths': NOT_11,
    'test_skorch_net.py::TestNeuralNet::test_not_fitted_raises': DELIBERATE_12,
    'test_skorch_net.py::TestNeuralNet::test_not_init_raises[forward]': DELIBERATE_13,
    'test_skorch_net.py::TestNeuralNet::test_not_init_raises[forward_iter]': DELIBERATE_13,
    'test_skorch_net.py::TestNeuralNet::test_not_init_raises[predict]': DELIBERATE_13,
    'test_skorch_net.py::TestNeuralNet::test_not_init_raises[predict_proba]': DELIBERATE_13,
    'test_skorch_net.py::TestNeuralNet::test_pickle_load[False]': NOT_14,
    'test_skorch_net.py::TestNeuralNet::test_pickle_save_load_device_is_none': NOT_15,
    'test_skorch_net.py::TestNeuralNet::test_predefined_split': NOT_16,
    'test_skorch_net.py::TestNeuralNet::test_predict_nonlinearity_called_with_predict_proba': NOT_17,
    'test_skorch_net.py::TestNeuralNet::test_predict_nonlinearity_none': NOT_17,
    'test_skorch_net.py::TestNeuralNet::test_predict_with_dataset': NOT_1,
    'test_skorch_net.py::TestNeuralNet::test_predict_with_dataset_one_item_error': NOT_1,
    'test_skorch_net.py::TestNeuralNet::test_predict_with_dataset_three_items_error': NOT_1,
    'test_skorch_net.py::TestNeuralNet::test_repr_fitted_works': DELIBERATE_18,
    'test_skorch_net.py::TestNeuralNet::test_repr_initialized_works': DELIBERATE_18,
    'test_skorch_net.py::TestNeuralNet::test_repr_uninitialized_works': DELIBERATE_18,
    'test_skorch_net.py::TestNeuralNet::test_set_params_on_custom_module_preserves_its_device': DELIBERATE_9,
    'test_skorch_regressor.py::TestNeuralNetRegressor::test_bagging_regressor': DELIBERATE_19,
    'test_skorch_regressor.py::TestNeuralNetRegressor::test_dimension_mismatch_warning': NOT_20,
    'test_skorch_regressor.py::TestNeuralNetRegressor::test_not_fitted_raises': DELIBERATE_12,
    'test_skorch_regressor.py::TestNeuralNetRegressor::test_not_init_raises[forward]': DELIBERATE_13,
    'test_skorch_regressor.py::TestNeuralNetRegressor::test_not_init_raises[forward_iter]': DELIBERATE_13,
    'test_skorch_regressor.py::TestNeuralNetRegressor::test_not_init_raises[predict]': DELIBERATE_13,
    'test_skorch_regressor.py::TestNeuralNetRegressor::test_not_init_raises[predict_proba]': DELIBERATE_21,
    'test_skorch_regressor.py::TestNeuralNetRegressor::test_predict_predict_proba': DELIBERATE_21,
}
