"""Input and output: photos (orientation, bit depth, ICC, EXIF), depth maps, atomic writes.

See docs/io.md.
"""
