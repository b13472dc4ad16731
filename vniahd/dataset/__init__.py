"""Dataset directories: write (:func:`write_dataset`), open (:class:`Dataset`), inspect."""

from vniahd.dataset.inspect import contact_sheet, summary
from vniahd.dataset.reader import Dataset, frame_refs
from vniahd.dataset.writer import write_dataset

__all__ = ["Dataset", "contact_sheet", "frame_refs", "summary", "write_dataset"]
