"""
==========================================
Text: a feature pipeline inside SDM, tuned
==========================================

:class:`~sdm_sklearn.SDMClassifier` takes a feature producer as its
``estimator``: here TF-IDF followed by a truncated SVD, which turns short
texts into dense 48-dimensional vectors. The producer is fitted on the
support split only, so the calibration split stays unseen by everything
that is fitted, and :class:`~sklearn.model_selection.GridSearchCV` tunes
the producer's and the classifier's parameters together.

The texts are generated below from templates: four topics, with sentences
that borrow words from another topic to make some of them ambiguous, and a
fifth topic that the classifier never sees in training.
"""

# %%
# A small synthetic corpus
# ------------------------
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline

from sdm_sklearn import SDMClassifier
from sdm_sklearn.exceptions import NoHighReliabilityRegionWarning, SmallRegionWarning
from sdm_sklearn.metrics import format_selective_report, selective_report
from sdm_sklearn.plotting import RegionAccuracyDisplay

VOCABULARY = {
    "sports": {
        "subject": ["the striker", "the goalkeeper", "our team", "the coach",
                    "the home side", "the captain"],
        "verb": ["scored in", "won", "lost", "defended in", "trained for",
                 "celebrated"],
        "object": ["the final", "the derby", "the league match", "extra time",
                   "the penalty shootout", "the season opener"],
    },
    "cooking": {
        "subject": ["the chef", "my grandmother", "the baker", "the recipe",
                    "the kitchen crew", "the sous-chef"],
        "verb": ["simmered", "seasoned", "baked", "whisked", "roasted",
                 "tasted"],
        "object": ["the tomato sauce", "a sourdough loaf", "the garlic butter",
                   "the onion soup", "a lemon tart", "the risotto"],
    },
    "finance": {
        "subject": ["the central bank", "investors", "the fund manager",
                    "the treasury", "shareholders", "the broker"],
        "verb": ["raised", "sold", "hedged", "bought", "cut", "priced"],
        "object": ["interest rates", "government bonds", "the stock index",
                   "the quarterly dividend", "currency futures",
                   "the mortgage rate"],
    },
    "weather": {
        "subject": ["the forecast", "a cold front", "the storm", "the wind",
                    "heavy rain", "the heatwave"],
        "verb": ["hit", "swept over", "flooded", "cooled", "battered",
                 "lingered over"],
        "object": ["the coast", "the valley", "the northern hills",
                   "the airport", "the harbour", "the city centre"],
    },
    # Never seen in training: an out-of-distribution topic.
    "astronomy": {
        "subject": ["the telescope", "the astronomer", "a comet", "the probe",
                    "the observatory", "a red dwarf"],
        "verb": ["observed", "orbited", "imaged", "eclipsed", "mapped",
                 "approached"],
        "object": ["the nebula", "a distant galaxy", "the exoplanet",
                   "the asteroid belt", "the lunar crater", "Jupiter's moons"],
    },
}
TRAINING_TOPICS = ["sports", "cooking", "finance", "weather"]


def make_corpus(topics, n_per_topic, mix_probability, rng):
    """Template sentences; with some probability one slot comes from another
    topic, which makes the sentence ambiguous."""
    texts, labels = [], []
    for topic in topics:
        for _ in range(n_per_topic):
            parts = []
            for slot in ("subject", "verb", "object"):
                source = topic
                if rng.random() < mix_probability:
                    source = rng.choice([t for t in TRAINING_TOPICS if t != topic])
                parts.append(rng.choice(VOCABULARY[source][slot]))
            texts.append(" ".join(parts) + ".")
            labels.append(topic)
    return np.array(texts), np.array(labels)


rng = np.random.default_rng(0)
texts, labels = make_corpus(TRAINING_TOPICS, 300, mix_probability=0.2, rng=rng)
test_texts, test_labels = make_corpus(TRAINING_TOPICS, 60, 0.2, rng)
unseen_texts, unseen_labels = make_corpus(["astronomy"], 60, 0.0, rng)
print(texts[:3])
print(f"{len(texts)} training texts, {len(test_texts)} test texts, "
      f"{len(unseen_texts)} texts of an unseen topic")

# %%
# The pipeline and the grid search
# --------------------------------
# The feature producer must return dense features: TF-IDF is sparse, so the
# pipeline ends with :class:`~sklearn.decomposition.TruncatedSVD`. The grid
# explores the producer's dimension and the exemplar dimension through the
# usual ``estimator__`` prefix. The default score is the accuracy of
# ``predict``; ``alpha`` is a requirement, not something to tune.
features = make_pipeline(
    TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
    TruncatedSVD(n_components=48, random_state=0),
)
sdm = SDMClassifier(features, alpha=0.9, n_iterations=2, n_epochs=30,
                    random_state=0)
grid = GridSearchCV(
    sdm,
    param_grid={
        "estimator__truncatedsvd__n_components": [16, 48],
        "n_exemplar_dims": [32, 128],
    },
    cv=3,
)
# The small models fitted on cross-validation folds may have no
# HIGH-RELIABILITY region, or one resting on few calibration points; that
# does not matter for the accuracy score used here, so those warnings are
# silenced during the search. The refitted model's region is shown below.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", NoHighReliabilityRegionWarning)
    warnings.simplefilter("ignore", SmallRegionWarning)
    grid.fit(texts, labels)
print("best parameters:", grid.best_params_)
print(f"best cross-validated accuracy: {grid.best_score_:.3f}")
clf = grid.best_estimator_
print(f"q'_min of the refitted model: {clf.min_rescaled_similarity_:.3g}")
print("calibration points in its region, per class:",
      dict(zip(clf.classes_.tolist(), clf.region_class_counts_.tolist(),
               strict=True)))

# %%
# Selective predictions on new texts
# ----------------------------------
# Ambiguous sentences get a prediction, but few of them are admitted.
# Sentences of the unseen topic also get a prediction among the four known
# topics (a classifier cannot answer otherwise); they should be rejected.
# Some are flagged out of distribution (``floor(q') = 0``), the others fall
# short of the region.
frame = clf.predict_uncertainty(test_texts)
report = selective_report(test_labels, frame["prediction"], frame["admitted"])
print(format_selective_report(report, title="SDM_HR | four known topics"))
unseen = clf.predict_uncertainty(unseen_texts)
print(f"\nunseen topic: {unseen['admitted'].mean():.1%} admitted, "
      f"{unseen['is_ood'].mean():.1%} flagged out of distribution")
examples = frame.assign(text=test_texts)[
    ["text", "prediction", "q", "d", "sdm_probability", "admitted"]
]
print(examples.sample(6, random_state=1).to_string(float_format="{:.3f}".format))

# %%
# Regions on known and unseen topics
# ----------------------------------
fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
RegionAccuracyDisplay.from_estimator(clf, test_texts, test_labels, ax=axes[0],
                                     name="four known topics")
# The unseen topic is not a class, so every prediction on it counts as wrong
# (the display warns that its labels are not among clf.classes_).
with warnings.catch_warnings():
    warnings.simplefilter("ignore", UserWarning)
    RegionAccuracyDisplay.from_estimator(clf, unseen_texts, unseen_labels,
                                         ax=axes[1], name="unseen topic")
fig.tight_layout()
