"""skorch 1.4.0's tests of its net, against skmm."""

from skorch.tests.test_net import *  # noqa: F403
