"""alt-profanity-check's probability, computed with numpy from the model's own parameters.

The installed `profanity_check` model is linear end to end: a TF-IDF vectorizer (lowercased
`(?u)\\b\\w\\w+\\b` tokens, a fixed vocabulary, idf weights, l2 row norm), then five LinearSVCs,
each with a sigmoid calibration, whose positive-class probabilities are averaged
(sklearn's `CalibratedClassifierCV`). `ProfanityModel.predict_prob(texts)` evaluates exactly
that for a whole batch at once: one regex `findall` per text, one dictionary lookup per token,
then sparse sums with `np.bincount`. The result equals `profanity_check.predict_prob` up to
floating-point rounding (a test checks 1e-9 on the dev corpus).

Two costs go away: scikit-learn's per-document Python analyzer, and importing scikit-learn and
unpickling the model in every worker (about 1.5-3 s each). The parameters are read from the
installed model once and cached as a small `.npz` under the user cache directory
(`$DOLMA_TOOLS_CACHE`, else `$XDG_CACHE_HOME/dolma_tools`, else `~/.cache/dolma_tools`), keyed by
a hash of the model files, so a different alt-profanity-check version gets its own entry. If the
installed model is not of the expected shape, `load_profanity_model` falls back to
`profanity_check.predict_prob` itself.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import tempfile
from itertools import repeat
from typing import Callable

import numpy as np

CACHE_VERSION = 1


class ProfanityModel:
    def __init__(self, vocabulary: list[str], idf: np.ndarray, coef: np.ndarray, intercept: np.ndarray,
                 cal_a: np.ndarray, cal_b: np.ndarray, token_pattern: str, lowercase: bool) -> None:
        self.vocabulary = {word: i for i, word in enumerate(vocabulary)}
        self.size = len(vocabulary)
        self.idf = np.asarray(idf, dtype=np.float64)
        self.coef = np.asarray(coef, dtype=np.float64)  # (classifiers, vocabulary)
        self.intercept = np.asarray(intercept, dtype=np.float64)
        self.cal_a = np.asarray(cal_a, dtype=np.float64)
        self.cal_b = np.asarray(cal_b, dtype=np.float64)
        self.findall = re.compile(token_pattern).findall
        self.lowercase = lowercase

    def predict_prob(self, texts: list[str]) -> np.ndarray:
        n = len(texts)
        if n == 0:
            return np.zeros(0, dtype=np.float64)
        findall, lower = self.findall, self.lowercase
        tokens: list[str] = []
        lengths = np.empty(n, dtype=np.int64)
        for i, text in enumerate(texts):
            found = findall(text.lower() if lower else text)
            lengths[i] = len(found)
            tokens += found
        columns = np.fromiter(map(self.vocabulary.get, tokens, repeat(-1)), dtype=np.int64, count=len(tokens))
        docs = np.repeat(np.arange(n, dtype=np.int64), lengths)
        known = columns >= 0
        pairs, counts = np.unique(docs[known] * self.size + columns[known], return_counts=True)
        doc, column = pairs // self.size, pairs % self.size
        weights = counts * self.idf[column]  # tf-idf before the l2 norm
        norm = np.sqrt(np.bincount(doc, weights=weights * weights, minlength=n))
        scale = np.divide(1.0, norm, out=np.zeros(n), where=norm > 0)
        probs = np.zeros(n, dtype=np.float64)
        for k in range(len(self.intercept)):
            decision = np.bincount(doc, weights=weights * self.coef[k, column], minlength=n) * scale
            decision += self.intercept[k]
            probs += 1.0 / (1.0 + np.exp(self.cal_a[k] * decision + self.cal_b[k]))  # expit(-(a f + b))
        probs /= len(self.intercept)
        probs[(probs > 1.0) & (probs <= 1.0 + 1e-5)] = 1.0
        return probs


def cache_dir() -> str:
    root = os.environ.get("DOLMA_TOOLS_CACHE")
    if not root:
        xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        root = os.path.join(xdg, "dolma_tools")
    return root


def _model_files() -> list[str]:
    import importlib.util

    spec = importlib.util.find_spec("profanity_check")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("alt-profanity-check is not installed")
    data = os.path.join(list(spec.submodule_search_locations)[0], "data")
    files = [os.path.join(data, "vectorizer.joblib"), os.path.join(data, "model.joblib")]
    for path in files:
        if not os.path.isfile(path):
            raise ImportError(f"alt-profanity-check model file missing: {path}")
    return files


def _extract() -> dict | None:
    """The linear model's parameters, from the installed pickles (imports scikit-learn)."""
    from profanity_check import profanity_check as pc

    vec, model = pc.vectorizer, pc.model
    try:
        params = vec.get_params()
        expected = dict(analyzer="word", binary=False, ngram_range=(1, 1), norm="l2", preprocessor=None,
                        strip_accents=None, sublinear_tf=False, tokenizer=None, use_idf=True)
        if any(params.get(k) != v for k, v in expected.items()):
            return None
        if getattr(model, "method", None) != "sigmoid" or len(model.classes_) != 2:
            return None
        vocabulary = [""] * len(vec.vocabulary_)
        for word, col in vec.vocabulary_.items():
            vocabulary[col] = word
        coef, intercept, cal_a, cal_b = [], [], [], []
        for cc in model.calibrated_classifiers_:
            est = cc.estimator
            if not hasattr(est, "coef_") or est.coef_.shape != (1, len(vocabulary)) or len(cc.calibrators) != 1:
                return None
            coef.append(np.asarray(est.coef_, dtype=np.float64)[0])
            intercept.append(float(np.asarray(est.intercept_).ravel()[0]))
            cal_a.append(float(cc.calibrators[0].a_))
            cal_b.append(float(cc.calibrators[0].b_))
    except AttributeError:
        return None
    return dict(vocabulary=np.array(vocabulary, dtype=str), idf=np.asarray(vec.idf_, dtype=np.float64),
                coef=np.stack(coef), intercept=np.array(intercept), cal_a=np.array(cal_a), cal_b=np.array(cal_b),
                token_pattern=np.array(params["token_pattern"]), lowercase=np.array(bool(params["lowercase"])))


def _from_arrays(arrays) -> ProfanityModel:
    return ProfanityModel(arrays["vocabulary"].tolist(), arrays["idf"], arrays["coef"], arrays["intercept"],
                          arrays["cal_a"], arrays["cal_b"], str(arrays["token_pattern"]), bool(arrays["lowercase"]))


@functools.lru_cache(maxsize=1)
def load_profanity_model() -> Callable[[list[str]], np.ndarray]:
    """`texts -> probabilities` (numpy ProfanityModel; profanity_check.predict_prob as a fallback)."""
    files = _model_files()
    digest = hashlib.sha1(str(CACHE_VERSION).encode())
    for path in files:
        with open(path, "rb") as fh:
            digest.update(fh.read())
    cached = os.path.join(cache_dir(), f"profanity-{digest.hexdigest()[:16]}.npz")
    try:
        with np.load(cached, allow_pickle=False) as arrays:
            return _from_arrays(arrays).predict_prob
    except (OSError, KeyError, ValueError):
        pass
    arrays = _extract()
    if arrays is None:  # an unexpected model: use the package itself
        from profanity_check import predict_prob

        return predict_prob
    try:
        os.makedirs(os.path.dirname(cached), exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(cached), suffix=".npz.tmp")
        try:
            with os.fdopen(fd, "wb") as out:
                np.savez(out, **arrays)
            os.replace(tmp, cached)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
    except OSError:
        pass  # a read-only cache only costs the next process the extraction again
    return _from_arrays(arrays).predict_prob
