"""The package's public names: imported on first use, all listed, and the same objects as before."""

from __future__ import annotations

import subprocess
import sys

import blockgen


def test_every_public_name_resolves_and_is_listed_by_dir():
    for name in blockgen.__all__:
        assert getattr(blockgen, name) is not None, name
        assert name in dir(blockgen), name


def test_importing_a_submodule_keeps_the_function_of_the_same_name():
    import blockgen.evaluate  # noqa: F401
    import blockgen.repair  # noqa: F401

    from blockgen.repair import repair
    from blockgen.evaluate import evaluate

    assert blockgen.repair is repair and blockgen.evaluate is evaluate
    assert callable(blockgen.export.grammar)


def test_an_unknown_name_is_an_attribute_error():
    try:
        blockgen.no_such_name  # noqa: B018
    except AttributeError as err:
        assert "no_such_name" in str(err)
    else:  # pragma: no cover
        raise AssertionError("expected AttributeError")


def test_import_blockgen_loads_neither_torch_nor_the_dialects():
    code = "import sys, blockgen; print('torch' in sys.modules, 'blockgen.dialects' in sys.modules, 'transformers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False", "False"]
