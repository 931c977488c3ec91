"""Which photos a batch takes, where each one's output goes and which depth map goes with it."""

from __future__ import annotations

import glob
import os
import string
from dataclasses import dataclass
from pathlib import Path

from lensblur.errors import InputError, UsageError
from lensblur.io.images import EXTENSIONS

DEFAULT_NAME = "{stem}_bokeh.{ext}"
NAME_FIELDS = ("stem", "ext", "name")
DEPTH_EXTENSIONS = (".png", ".tif", ".tiff", ".npy", ".pfm", ".jpg", ".jpeg")
_GLOB_CHARACTERS = set("*?[")


@dataclass(frozen=True)
class Job:
    """One photo of a batch. input/output: absolute paths; relative: the input's folder relative
    to the folder argument it was found in ("" for files and globs), mirrored under OUTDIR;
    depth: a depth-map file from --depth-dir, or None to use --depth; error: why the photo
    cannot be rendered before trying (no depth map in --depth-dir), or None."""

    input: str
    output: str
    relative: str = ""
    depth: str | None = None
    error: str | None = None


def find_photos(inputs: list[str], recursive: bool = False,
                exclude: str | Path | None = None) -> list[tuple[Path, str]]:
    """Expand files, folders and glob patterns into (photo path, relative folder) pairs.

    Folders give the photos with a known image extension directly inside them (and below, with
    ``recursive``; their subfolder is the relative folder); patterns are expanded with ``**``
    matching subfolders when ``recursive``. An explicit path that does not exist is kept (its
    render fails and the manifest says so). Hidden files and anything under ``exclude`` (the
    output folder) are skipped; each photo appears once, in argument order then name order.
    """
    excluded = Path(exclude).resolve() if exclude is not None else None
    found: dict[Path, tuple[Path, str]] = {}
    for item in inputs:
        path = Path(item).expanduser()
        if path.is_dir():
            pattern = "**/*" if recursive else "*"
            candidates = [(p, _relative(p.parent, path)) for p in sorted(path.glob(pattern))
                          if p.is_file() and p.suffix.lower() in EXTENSIONS]
        elif not path.exists() and _GLOB_CHARACTERS & set(item):
            candidates = [(Path(p), "") for p in sorted(glob.glob(os.path.expanduser(item), recursive=recursive))
                          if Path(p).is_file()]
        else:
            candidates = [(path, "")]
        for photo, relative in candidates:
            resolved = photo.resolve()
            if photo.name.startswith(".") or any(part.startswith(".") for part in Path(relative).parts):
                continue
            if excluded is not None and resolved.is_relative_to(excluded):
                continue
            found.setdefault(resolved, (resolved, relative))
    return list(found.values())


def _relative(folder: Path, root: Path) -> str:
    relative = folder.relative_to(root).as_posix()
    return "" if relative == "." else relative


def check_name_pattern(pattern: str) -> None:
    """Raise UsageError unless ``pattern`` is a file name using only {stem}, {ext} and {name}."""
    try:
        fields = [name for _, name, _, _ in string.Formatter().parse(pattern) if name is not None]
    except ValueError as error:
        raise UsageError(f"--name {pattern!r}: {error}") from None
    unknown = [name for name in fields if name not in NAME_FIELDS]
    if unknown:
        raise UsageError(f"--name {pattern!r}: unknown field {{{unknown[0]}}} (use {{stem}}, {{ext}}, {{name}})")
    if "/" in pattern or os.sep in pattern or not fields:
        raise UsageError(f"--name {pattern!r} must be a file name using {{stem}} (e.g. {DEFAULT_NAME!r})")


def output_path(photo: Path, relative: str, outdir: str | Path, pattern: str = DEFAULT_NAME) -> Path:
    """Where ``photo`` is written: OUTDIR/relative/pattern, with {stem} the photo's name without
    its extension, {ext} its extension without the dot and {name} its whole file name."""
    name = pattern.format(stem=photo.stem, ext=photo.suffix.lstrip("."), name=photo.name)
    return Path(outdir).resolve() / relative / name


def find_depth(depth_dir: str | Path, photo: Path, relative: str = "") -> Path | None:
    """The depth map for ``photo`` in ``depth_dir``: a file named like the photo's stem (or stem
    + ``_depth`` / ``_disparity``) with a depth-map extension, looked for in the photo's mirrored
    subfolder first, then at the top; None when there is none."""
    folders = [Path(depth_dir) / relative] if relative else []
    folders.append(Path(depth_dir))
    for folder in folders:
        for suffix in ("", "_depth", "_disparity"):
            for extension in DEPTH_EXTENSIONS:
                for candidate in (folder / f"{photo.stem}{suffix}{extension}",
                                  folder / f"{photo.stem}{suffix}{extension.upper()}"):
                    if candidate.is_file():
                        return candidate
    return None


def plan_jobs(inputs: list[str], outdir: str | Path, *, pattern: str = DEFAULT_NAME, recursive: bool = False,
              depth_dir: str | Path | None = None) -> list[Job]:
    """The jobs of a batch, in input order. Raises UsageError when two photos would be written
    to the same output (choose a --name with {ext} or {name}), InputError for a missing depth_dir."""
    check_name_pattern(pattern)
    if depth_dir is not None and not Path(depth_dir).is_dir():
        raise InputError(f"--depth-dir {depth_dir} is not a folder")
    jobs, seen = [], {}
    for photo, relative in find_photos(inputs, recursive, exclude=outdir):
        output = output_path(photo, relative, outdir, pattern)
        if output in seen:
            raise UsageError(f"{seen[output]} and {photo} would both be written to {output}: "
                             "use {name} or {ext} in --name")
        seen[output] = photo
        depth = find_depth(depth_dir, photo, relative) if depth_dir else None
        error = f"no depth map for {photo.stem} in {depth_dir}" if depth_dir and depth is None else None
        jobs.append(Job(str(photo), str(output), relative, str(depth) if depth else None, error))
    return jobs
