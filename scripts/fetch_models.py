"""Fetch MediaPipe's selfie-segmentation and short-range face-detection models.

The .tflite files ship inside the ``mediapipe==0.10.21`` wheel on PyPI (Apache-2.0). This script
downloads that wheel without its dependencies (``pip download --no-deps``), extracts the two model
files into ``src/lensblur/depth/models/`` (git-ignored) and prints where they went.

    python scripts/fetch_models.py              # download the wheel from PyPI
    python scripts/fetch_models.py --wheel W.whl  # use a wheel already on disk
"""

from __future__ import annotations

import argparse
import glob
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

WHEEL_SPEC = "mediapipe==0.10.21"
MEMBERS = {
    "mediapipe/modules/selfie_segmentation/selfie_segmentation.tflite": "selfie_segmentation.tflite",
    "mediapipe/modules/face_detection/face_detection_short_range.tflite": "face_detection_short_range.tflite",
}
TARGET = Path(__file__).resolve().parents[1] / "src" / "lensblur" / "depth" / "models"


def extract(wheel: Path, target: Path = TARGET) -> list[Path]:
    """Extract the two model files from a mediapipe wheel into ``target``; the written paths."""
    target.mkdir(parents=True, exist_ok=True)
    written = []
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        for member, name in MEMBERS.items():
            if member not in names:
                raise SystemExit(f"{wheel.name} has no {member}")
            path = target / name
            tmp = path.with_suffix(".part")
            tmp.write_bytes(archive.read(member))
            tmp.replace(path)
            written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheel", type=Path, help="a mediapipe-0.10.21 wheel already downloaded")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        wheel = args.wheel
        if wheel is None:
            command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                       WHEEL_SPEC, "-d", tmp]
            # the models are the same in every platform's wheel; ask for one that always exists
            command += ["--platform", "manylinux_2_28_x86_64", "--python-version", "3.11"]
            subprocess.run(command, check=True)
            found = glob.glob(str(Path(tmp) / "mediapipe-*.whl"))
            if not found:
                raise SystemExit("pip download produced no mediapipe wheel")
            wheel = Path(found[0])
        for path in extract(wheel):
            print(f"wrote {path} ({path.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
