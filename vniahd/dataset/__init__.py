"""Dataset directories: write (:func:`write_dataset`), open (:class:`Dataset`), inspect.

From inputs to a directory in one call: :func:`vniahd.generate` (:mod:`vniahd.dataset.generate`).
"""

from vniahd.dataset.inspect import contact_sheet, summary
from vniahd.dataset.reader import Dataset
from vniahd.dataset.reader import frame_refs as frame_refs  # importable here for existing callers
from vniahd.dataset.writer import write_dataset

__all__ = ["Dataset", "contact_sheet", "summary", "write_dataset"]
