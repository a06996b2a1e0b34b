"""skorch 1.4.0's tests of its regressor, against skmm."""

from skorch.tests.test_regressor import *  # noqa: F403
