"""Datasets: standard files (IDX, CIFAR-10 tarball, image folders), sentence corpora, discovery,
download with checksums, and the small evaluation sets shipped in the package."""

from semguard.data import cifar as _cifar  # noqa: F401  (registers CIFAR-10, Kodak)
from semguard.data import idx as _idx  # noqa: F401  (registers IDX sets)
from semguard.data import sources as _sources  # noqa: F401  (registers the sources)
from semguard.data import text as _text  # noqa: F401  (registers the text corpora)
from semguard.data.images import CropSampler, ImageFolder, load_image
from semguard.data.photos import MissingDataError, shipped_photos
from semguard.data.sources import ImageSource, LabelledSource, image_source, labelled_source
from semguard.data.text import TEXT_CORPORA, TextCorpus, text_corpus

__all__ = ["CropSampler", "ImageFolder", "ImageSource", "LabelledSource", "MissingDataError", "TEXT_CORPORA",
           "TextCorpus", "image_source", "labelled_source", "load_image", "shipped_photos", "text_corpus"]
