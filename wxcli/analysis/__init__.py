"""Text analysis for the word-count and sentiment tables: jieba segmentation with wxcli's filters
and stopwords, TF-IDF keywords, and snownlp-equivalent sentiment scores.

Importing this package loads neither jieba nor snownlp; each is loaded by the first object that
needs it.
"""

from wxcli.analysis.segment import (
    Segmenter,
    SegmentOptions,
    keywords,
    load_idf,
    load_stopwords,
)
from wxcli.analysis.sentiment import SentimentPool, SentimentScorer, build_model_cache

__all__ = [
    "SegmentOptions",
    "Segmenter",
    "SentimentPool",
    "SentimentScorer",
    "build_model_cache",
    "keywords",
    "load_idf",
    "load_stopwords",
]
