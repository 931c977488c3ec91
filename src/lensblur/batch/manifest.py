"""The batch manifest: one row per photo attempt, appended as each photo finishes.

JSON lines (default, ``manifest.jsonl``) or CSV (a path ending in ``.csv``). Fields:
input, output (absolute paths), depth_source, focus (disparity in [0, 1]), K (blur in pixels per
unit disparity), seconds (wall time of the photo on its worker), status (``done`` or
``failed``), error (one line, or empty), finished (UTC time, ISO 8601). A rerun appends; the last
row of an input is the one that counts.
"""

from __future__ import annotations

import csv
import json
import os
from datetime import datetime, timezone
from pathlib import Path

from lensblur.errors import InputError, OutputError

FIELDS = ["input", "output", "depth_source", "focus", "K", "seconds", "status", "error", "finished"]
DONE, FAILED = "done", "failed"


class Manifest:
    """An append-only manifest file at ``path`` (format from the extension)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.csv = self.path.suffix.lower() == ".csv"

    def read(self) -> dict[str, dict]:
        """The last row of every input in the file ({} when there is no file). A torn last line
        (a batch killed while writing it) is ignored; any other damage raises InputError."""
        if not self.path.exists():
            return {}
        rows: dict[str, dict] = {}
        try:
            with open(self.path, newline="") as handle:
                if self.csv:
                    records = list(csv.DictReader(handle))
                else:
                    lines = handle.read().splitlines()
                    records = []
                    for number, line in enumerate(lines, 1):
                        if not line.strip():
                            continue
                        try:
                            records.append(json.loads(line))
                        except json.JSONDecodeError:
                            if number < len(lines):
                                raise InputError(f"manifest {self.path} line {number} is not JSON") from None
        except (OSError, UnicodeDecodeError) as error:
            raise InputError(f"cannot read manifest {self.path}: {error}") from None
        for record in records:
            if isinstance(record, dict) and "input" in record:
                rows[record["input"]] = record
        return rows

    def append(self, row: dict) -> None:
        """Write one row at the end of the file and flush it to disk."""
        row = {key: row.get(key) for key in FIELDS}
        row["finished"] = row["finished"] or datetime.now(timezone.utc).isoformat(timespec="seconds")
        try:
            new = not self.path.exists() or self.path.stat().st_size == 0
            with open(self.path, "a", newline="") as handle:
                if self.csv:
                    writer = csv.DictWriter(handle, fieldnames=FIELDS)
                    if new:
                        writer.writeheader()
                    writer.writerow({k: "" if v is None else v for k, v in row.items()})
                else:
                    handle.write(json.dumps(row) + "\n")
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as error:
            raise OutputError(f"cannot write manifest {self.path}: {error.strerror or error}") from None


def is_done(row: dict | None, output: str) -> bool:
    """True when a manifest row says ``output`` was written and the file is there."""
    return bool(row) and row.get("status") == DONE and row.get("output") == output and Path(output).is_file()
