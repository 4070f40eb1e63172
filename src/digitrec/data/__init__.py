"""Data: the IDX format, the dataset registry (mnist, emnist-digits, idx:DIR), downloads, splits."""
from .datasets import MNIST, DigitArrays, DigitDataset, EMNISTDigits, IDXFolder, dataset_names, load, locate
from .idx import read_idx, write_idx
from .splits import Split, make_split

__all__ = ["MNIST", "EMNISTDigits", "IDXFolder", "DigitDataset", "DigitArrays", "dataset_names", "load", "locate",
           "read_idx", "write_idx", "Split", "make_split"]
