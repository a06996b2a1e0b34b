"""skorch 1.4.0's tests of its classifier, against skmm."""

from skorch.tests.test_classifier import *  # noqa: F403
