"""Project-level contracts: public API, import weight, README and CI in step, error pickling."""

import pickle
import re
import subprocess
import sys
from pathlib import Path

import pytest

import polymodal as pm
from polymodal import errors

ROOT = Path(__file__).resolve().parents[2]


def test_all_matches_public_names():
    """__all__ lists exactly the public names the package defines (fix: update __all__)."""
    public = {n for n in vars(pm) if not n.startswith("_") and n not in {"annotations"}}
    modules = {n for n in public if type(getattr(pm, n)).__name__ == "module"}
    assert set(pm.__all__) - {"__version__"} == public - modules
    for name in pm.__all__:
        assert hasattr(pm, name)


def test_contract_names_exist():
    for name in [
        "Doc",
        "DocList",
        "DocVec",
        "ImageUrl",
        "AudioUrl",
        "VideoUrl",
        "TextUrl",
        "Mesh3DUrl",
        "NdArray",
        "Vector",
        "ImageBytes",
        "AudioBytes",
        "VideoBytes",
        "TextBytes",
        "Mesh3DBytes",
    ]:
        assert name in pm.__all__


def test_import_is_light():
    """`import polymodal` must not import torch, av, PIL, trimesh, pyarrow or pandas."""
    code = (
        "import sys, polymodal; heavy = {'torch','av','PIL','trimesh','pyarrow','pandas','transformers'};"
        "print(sorted(m for m in heavy if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_readme_opens_with_two_setup_commands_and_ci_runs_the_second():
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"```bash\n(.*?)```", readme, re.S)
    assert block is not None, "README must open with a bash block of two commands"
    commands = [line for line in block.group(1).splitlines() if line.strip()]
    assert len(commands) == 2
    ci = (ROOT / ".ci" / "run").read_text()
    assert f'TEST_COMMAND="{commands[1]}"' in ci


ERRORS = [
    errors.ConfigError("bad option", option="x"),
    errors.UnknownBackendError("no such backend", scheme="foo", known=("a", "b")),
    errors.SchemaError("bad field", field="embedding"),
    errors.FormatError("truncated"),
    errors.MediaError("cannot decode", uri="a.png"),
    errors.NotFoundError("missing id", id="x"),
    errors.UnsupportedOperation("no text search", capability="text"),
    errors.OptionalDependencyError.for_package("av", "video", "Video decoding"),
    errors.BackendError("down", backend="pgvector"),
    errors.OverloadedError("queue full", backend="batcher:x", reason="overloaded"),
    errors.DeadlineExceeded("too slow", backend="batcher:x", reason="timeout"),
    errors.StepError("step 1 failed", backend="pipeline step x", step="x", index=3),
]


@pytest.mark.parametrize("exc", ERRORS, ids=lambda e: type(e).__name__)
def test_errors_pickle_with_context(exc):
    back = pickle.loads(pickle.dumps(exc))
    assert type(back) is type(exc)
    assert str(back) == str(exc)
    assert back._context == exc._context


def test_error_hierarchy_matches_builtin_expectations():
    assert issubclass(errors.SchemaError, TypeError)
    assert issubclass(errors.SchemaError, ValueError)
    assert issubclass(errors.NotFoundError, KeyError)
    assert issubclass(errors.OptionalDependencyError, ImportError)
    assert issubclass(errors.UnsupportedOperation, NotImplementedError)
    assert issubclass(errors.ConfigError, ValueError)
    assert issubclass(errors.DeadlineExceeded, TimeoutError)
    assert issubclass(errors.OverloadedError, errors.BackendError)
    assert str(errors.NotFoundError("no doc 'x'")) == "no doc 'x'"  # not repr()'d like KeyError
    msg = str(errors.OptionalDependencyError.for_package("av", "video", "Video decoding"))
    assert "pip install 'polymodal[video]'" in msg


def test_http_status_mapping():
    assert errors.http_status(errors.NotFoundError("x")) == 404
    assert errors.http_status(errors.FormatError("x")) == 400
    assert errors.http_status(errors.SchemaError("x")) == 422
    assert errors.http_status(errors.UnknownBackendError("x")) == 400
    assert errors.http_status(RuntimeError("x")) == 500
    assert errors.http_status(errors.OverloadedError("x")) == 503
    assert errors.http_status(errors.DeadlineExceeded("x")) == 504
