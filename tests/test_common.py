"""scikit-learn's estimator checks over every public estimator."""

from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from skmm import ImagePixels, MultimodalFuser, TextEmbedder

# ImagePixels and TextEmbedder take a column of images or texts, not a 2-D
# numeric array: their tags say so and the checks skip them;
# tests/test_image.py and tests/test_text.py cover their sklearn contract.
ESTIMATORS = [
    MultimodalFuser([
        ("scaled", StandardScaler(), slice(0, None)),
        ("first", "passthrough", slice(0, 1)),
    ]),
    MultimodalFuser([("all", StandardScaler(), slice(0, None))], fusion="sum",
                    n_components=1, random_state=0),
    ImagePixels(size=2),
    TextEmbedder("tfidf", n_components=2),
]

EXPECTED_FAILED = {}


def _expected_failed_checks(estimator):
    return EXPECTED_FAILED.get(type(estimator).__name__, {})


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=_expected_failed_checks)
def test_sklearn_compatible(estimator, check):
    check(estimator)
