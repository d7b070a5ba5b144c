"""Files in and out, shared by the command line and the web page (no front end's code in here).

- ``load_image`` / ``check_image`` — images checked from their header, decoded upright, one-line errors.
- ``publish_edit``, ``atomic_write``, ``save_image``, ``save_json`` — writes no reader sees half done.
- ``InputError`` — a bad input, said in one line; ``ImageTooLarge`` — one image over the pixel limit.
- ``DEFAULT_MAX_PIXELS``, ``MAX_PIXELS_LIMIT``, ``MAX_SEED`` — the inputs' bounds.
"""

from zerocon.files.errors import InputError
from zerocon.files.images import ImageTooLarge, check_image, load_image
from zerocon.files.limits import DEFAULT_MAX_PIXELS, MAX_PIXELS_LIMIT, MAX_SEED
from zerocon.files.writing import atomic_write, jsonable, publish_edit, save_image, save_json

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "MAX_PIXELS_LIMIT",
    "MAX_SEED",
    "ImageTooLarge",
    "InputError",
    "atomic_write",
    "check_image",
    "jsonable",
    "load_image",
    "publish_edit",
    "save_image",
    "save_json",
]
