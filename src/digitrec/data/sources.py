"""Where each dataset's files are published, with their sha256 (checked after every download)."""
from __future__ import annotations

from dataclasses import dataclass, field

# The mirrors torchvision uses for MNIST, tried in order.
MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
# NIST publishes all EMNIST splits in one zip; only the digits members are extracted from it.
EMNIST_ZIP_URL = "https://biometrics.nist.gov/cs_links/EMNIST/gzip.zip"
EMNIST_ZIP_MEMBER_DIR = "gzip/"


@dataclass(frozen=True)
class DatasetSource:
    name: str
    subdir: str  # folder under a data root
    train_images: str
    train_labels: str
    test_images: str
    test_labels: str
    sha256: dict[str, str] = field(default_factory=dict)
    transposed: bool = False  # EMNIST stores images transposed relative to MNIST
    num_classes: int = 10
    mirrors: tuple[str, ...] = ()  # per-file base URLs
    zip_url: str | None = None  # or: one archive holding the files under zip_member_dir
    zip_member_dir: str = ""
    bundled: bool = False  # shipped inside the package

    @property
    def files(self) -> tuple[str, str, str, str]:
        return (self.train_images, self.train_labels, self.test_images, self.test_labels)


MNIST = DatasetSource(
    name="mnist",
    subdir="mnist",
    train_images="train-images-idx3-ubyte.gz",
    train_labels="train-labels-idx1-ubyte.gz",
    test_images="t10k-images-idx3-ubyte.gz",
    test_labels="t10k-labels-idx1-ubyte.gz",
    sha256={
        "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    },
    mirrors=MNIST_MIRRORS,
    bundled=True,
)

EMNIST_DIGITS = DatasetSource(
    name="emnist-digits",
    subdir="emnist",
    train_images="emnist-digits-train-images-idx3-ubyte.gz",
    train_labels="emnist-digits-train-labels-idx1-ubyte.gz",
    test_images="emnist-digits-test-images-idx3-ubyte.gz",
    test_labels="emnist-digits-test-labels-idx1-ubyte.gz",
    sha256={
        "emnist-digits-train-images-idx3-ubyte.gz": "f7c95004d14d81af89522e67d8f0c781dfb3bd544181c81bfe1eb6b41c35b726",
        "emnist-digits-train-labels-idx1-ubyte.gz": "6638a6ff5fe2eefd9cca2471995b46c82986b8e4b2a70d2f5ce8e05d7edb319e",
        "emnist-digits-test-images-idx3-ubyte.gz": "20ebe43509264f7639d37c835a3f0b009e90b29e00a099a03101abe1644a3f63",
        "emnist-digits-test-labels-idx1-ubyte.gz": "bad1834c45d5988e270b99d43b13edc3fd898f658ffbc2caf2846ef27f7b05b0",
    },
    transposed=True,
    zip_url=EMNIST_ZIP_URL,
    zip_member_dir=EMNIST_ZIP_MEMBER_DIR,
)

SOURCES = {s.name: s for s in (MNIST, EMNIST_DIGITS)}
