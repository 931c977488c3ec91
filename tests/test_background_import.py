"""lensblur.renderers.import_in_background: the command line imports its renderer on a second
thread while it decodes the photo; nothing is started when there is nothing to import, and an
import error is raised by get_renderer on the caller's thread, as without it."""

import subprocess
import sys
from pathlib import Path

import pytest

import lensblur.renderers as renderers
from lensblur.io.images import SILENT_THREAD

ROOT = Path(__file__).resolve().parents[1]


def test_a_fresh_process_imports_the_renderer_on_a_silent_thread():
    code = """
import sys
from lensblur.renderers import import_in_background
assert "lensblur.renderers.scatter" not in sys.modules
thread = import_in_background("scatter")
assert thread is not None and thread.name == "%s" and thread.daemon
thread.join()
assert "lensblur.renderers.scatter" in sys.modules
assert import_in_background("scatter") is None  # imported already
assert import_in_background("no-such-renderer") is None
print("ok")
""" % SILENT_THREAD
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok" and done.stderr == ""


def test_an_import_error_is_raised_by_get_renderer_not_the_thread(monkeypatch):
    monkeypatch.setitem(renderers._MODULES, "broken", "lensblur.renderers.no_such_module")
    thread = renderers.import_in_background("broken")
    assert thread is not None
    thread.join()
    with pytest.raises(ModuleNotFoundError, match="no_such_module"):
        renderers.get_renderer("broken")
