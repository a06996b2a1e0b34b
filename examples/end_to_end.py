"""End to end vs frozen features: fashion products, photo + title + attributes
===========================================================================

Trains, on the fashion products bundled with skmm, (1) the frozen-feature
pipeline of the quickstart family (``ImageEmbedder``'s pretrained
EfficientNet-Lite0 features, standardised, TF-IDF of the title and one-hot attributes,
fused by ``MultimodalFuser`` into a logistic regression) and (2) a
``MultimodalNetClassifier`` that trains an image CNN, a bag-of-words text
tower and a tabular tower jointly on the raw DataFrame. Prints the held-out
accuracy and fit time of both.

Settings are trimmed so that it runs in about half a minute on 2 CPU cores:
all 2,000 bundled rows (the frozen network embeds the 1,500 training photos at
224 px in about 10 s), 32 px images for the end-to-end net, 4 epochs. On this
data the titles nearly give the subcategory away, so both reach about
0.97-0.99 and the frozen features are as good as end to end; end-to-end
training pays off on data that pretrained encoders do not fit (see
``benchmarks/bench_e2e.py``).
"""

import time

import torch
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from skmm import ImageEmbedder, MultimodalFuser, MultimodalNetClassifier, load_fashion

torch.manual_seed(0)
X, y = load_fashion(target="subCategory", return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.25, stratify=y, random_state=0
)
attributes = ["gender", "baseColour", "season", "usage"]
print(f"{len(X_train)} training and {len(X_test)} test products, {y.nunique()} classes")

frozen = Pipeline([
    ("fuser", MultimodalFuser([
        ("image", make_pipeline(ImageEmbedder(), StandardScaler()), "image"),
        ("text", TfidfVectorizer(sublinear_tf=True), "title"),
        ("tabular", make_pipeline(SimpleImputer(strategy="most_frequent"),
                                  OneHotEncoder(handle_unknown="ignore")), attributes),
    ])),
    ("clf", LogisticRegression(C=3.0, max_iter=1000)),
])
end_to_end = MultimodalNetClassifier(
    image="image", text="title", tabular=attributes, image_size=32, text_tower="bag",
    modality_dropout=0.1, max_epochs=4, lr=3e-3, batch_size=64, random_state=0,
)

for name, model in [("frozen features", frozen), ("end to end", end_to_end)]:
    start = time.perf_counter()
    model.fit(X_train, y_train)
    seconds = time.perf_counter() - start
    print(f"{name:>16}: accuracy {model.score(X_test, y_test):.3f} (fit {seconds:.0f} s)")
