"""testimports.importers: which files of a test tree import a changed test file."""

from __future__ import annotations

import pytest

from noxlib.testimports import importers

BASE = "tests/test_base.py"


@pytest.mark.parametrize(
    "text",
    [
        "import test_base\n",
        "import tests.test_base as b\n",
        "from test_base import TestShort\n",
        "from tests import test_base\n",
        "from . import test_base\n",
        "from .test_base import TestShort\n",
        "def test_late():\n    import test_base\n",
        "import importlib\nm = importlib.import_module('test_base')\n",
        "m = __import__('tests.test_base')\n",
        "pytest_plugins = ['tests.test_base']\n",
        "pytest_plugins = 'test_base'\n",
    ],
)
def test_each_way_of_importing_a_test_file_is_seen(text: str) -> None:
    assert importers(BASE, {BASE: "", "tests/test_other.py": text}) == {"tests/test_other.py"}


@pytest.mark.parametrize(
    "text",
    [
        "import test_baseline\n",
        "from tests import test_based\n",
        "from .. import test_base\n",  # tests/test_base.py is not in the parent folder
        "name = 'test_base'\n",  # a string that is no import
        "import os\n# test_base\n",
        "def broken(:\n  import test_base\n",  # does not parse: pytest fails on it anyway
    ],
)
def test_a_file_that_only_names_it_does_not_import_it(text: str) -> None:
    assert importers(BASE, {BASE: "", "tests/test_other.py": text}) == set()


def test_a_relative_import_counts_its_levels_from_the_importers_folder() -> None:
    texts = {
        "tests/helpers/shapes.py": "",
        "tests/unit/test_a.py": "from ..helpers import shapes\n",
        "tests/unit/test_b.py": "from .helpers import shapes\n",
    }
    assert importers("tests/helpers/shapes.py", texts) == {"tests/unit/test_a.py"}


def test_a_package_init_is_imported_by_its_folders_name() -> None:
    texts = {"tests/helpers/__init__.py": "", "tests/test_a.py": "import helpers\n"}
    assert importers("tests/helpers/__init__.py", texts) == {"tests/test_a.py"}


def test_importers_of_importers_are_found() -> None:
    texts = {
        BASE: "",
        "tests/kit.py": "from test_base import TestShort as Shared\n",
        "tests/test_user.py": "from kit import Shared\n",
        "tests/test_alone.py": "import os\n",
    }
    assert importers(BASE, texts) == {"tests/kit.py", "tests/test_user.py"}


def test_an_absolute_import_matches_by_the_end_of_the_path_either_way() -> None:
    # Which of two same-named files Python takes depends on sys.path at run time: both count.
    texts = {"a/test_base.py": "", "b/test_base.py": "", "c/test_x.py": "import test_base\n"}
    assert importers("a/test_base.py", texts) == {"c/test_x.py"}
    assert importers("b/test_base.py", texts) == {"c/test_x.py"}
