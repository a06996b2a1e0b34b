"""The default output scale of TextEmbedder, for the obvious pipeline.

``make_pipeline(TextEmbedder(), LogisticRegression())`` on the bundled titles
(subCategory, 5-fold accuracy), side by side with the embeddings at unit
length (the former default) and with a StandardScaler in between. Each title
is embedded once (an embedding cache), then every variant reads it.

Run: python benchmarks/bench_text_scale.py
"""

import tempfile

from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skmm import EmbeddingCache, TextEmbedder, load_fashion


def main():
    X, y = load_fashion(target="subCategory", return_X_y=True)
    cv = StratifiedKFold(5, shuffle=True, random_state=0)
    with tempfile.TemporaryDirectory() as folder:
        cache = EmbeddingCache(folder)
        variants = {
            "default (length sqrt(d))": make_pipeline(TextEmbedder(cache=cache),
                                                      LogisticRegression(max_iter=3000)),
            "unit length": make_pipeline(TextEmbedder(cache=cache, normalize=True),
                                         LogisticRegression(max_iter=3000)),
            "unit length + StandardScaler": make_pipeline(
                TextEmbedder(cache=cache, normalize=True), StandardScaler(),
                LogisticRegression(max_iter=3000)),
        }
        scores = {name: cross_val_score(model, X["title"], y, cv=cv).mean()
                  for name, model in variants.items()}
    base = scores["unit length"]
    for name, score in scores.items():
        print(f"{name:<30} accuracy {score:.3f}  ({score - base:+.3f} vs unit length)")


if __name__ == "__main__":
    main()
