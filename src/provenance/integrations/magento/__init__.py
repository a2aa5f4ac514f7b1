r"""Magento 2: sign the images of a product import CSV, and the storefront's resized copies.

Two jobs, both offline:

* :func:`import_csv` reads a Magento 2 product import CSV (``sku``, the image columns
  ``base_image``, ``small_image``, ``thumbnail_image``, ``swatch_image``,
  ``additional_images`` and their label columns), signs every image that has a
  provenance record, fills empty labels of AI-generated images with a disclosure
  text, and writes a new CSV plus an images folder ready for Magento's import.
* :func:`sign_cache` finds the renditions Magento's resize wrote to
  ``catalog/product/cache/<hash>/a/b/file`` (GD2 and ImageMagick drop APP segments
  and PNG text chunks, so they lose the manifest) and signs each with lineage to its
  original ``catalog/product/a/b/file``, or records it in the inventory only.

The CSV rules follow Magento's own import (``Magento\ImportExport\Model\Import``,
``Magento\CatalogImportExport\Model\Import\Product``):

1. The field separator is the ``_import_field_separator`` option (default ``,``);
   here it is given or sniffed from the header line. A UTF-8 BOM is dropped on
   reading (Magento removes it too) and written back when the input had one.
2. Image cells hold one or more paths joined by the multiple value separator
   (``_import_multiple_value_separator``, default ``,``), each trimmed. Labels of
   ``additional_images`` pair with the images by position; with ``fields_enclosure``
   each label is wrapped in double quotes so it may contain the separator.
3. An image path is relative to the import images directory
   (``import_images_file_dir``: ``var/import/images`` in 2.3+, ``pub/media/import``
   before). A leading ``/`` does not make it absolute: Magento's uploader joins
   ``<images dir>/`` and the value, so ``/m/b/shoe.jpg`` (the form Magento's export
   writes) is ``<images dir>/m/b/shoe.jpg``.
4. ``http(s)://`` values are downloaded by Magento. We never fetch: such an image is
   a per-row error ("remote image not fetched").
5. The cell value ``__EMPTY__VALUE__`` (``_import_empty_attribute_value_constant``)
   clears an attribute; it is not an image.

Bad rows never stop the import and never leave a half-written CSV: every row is
checked and its images prepared first, then the CSV of good rows is written
atomically, and the bad rows go, unchanged, to ``<name>.rejected.csv``.

This package does file I/O and composes the verbs; it never prints and never
imports c2pa. Its modules, one job each (this ``__init__`` only re-exports)::

    _csv.py      the CSV dialect: read, sniff, split cells, fill labels, write
    _model.py    ImportOptions and the import's report, row by row, image by image
    _images.py   one image a cell names: its path, record, provenance; sign or copy it
    _import.py   import_csv, step by step
    _cache.py    sign_cache: the storefront's resized copies
"""

from __future__ import annotations

from provenance.integrations.magento._cache import CacheAction, CacheOutcome, sign_cache
from provenance.integrations.magento._csv import EMPTY_VALUE_CONSTANT, CsvFormat
from provenance.integrations.magento._images import magento_file_path
from provenance.integrations.magento._import import import_csv
from provenance.integrations.magento._model import (
    DEFAULT_DISCLOSURE,
    DEFAULT_IMAGES_DIRS,
    IMAGE_COLUMNS,
    ImageAction,
    ImageOutcome,
    ImportOptions,
    ImportReport,
    RowProblem,
    RowReport,
)

__all__ = [
    "DEFAULT_DISCLOSURE",
    "DEFAULT_IMAGES_DIRS",
    "EMPTY_VALUE_CONSTANT",
    "IMAGE_COLUMNS",
    "CacheAction",
    "CacheOutcome",
    "CsvFormat",
    "ImageAction",
    "ImageOutcome",
    "ImportOptions",
    "ImportReport",
    "RowProblem",
    "RowReport",
    "import_csv",
    "magento_file_path",
    "sign_cache",
]
