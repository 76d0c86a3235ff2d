"""The catalog's photos as columns, each PhotoInfo read only when asked for.

Grouping a library by content needs every photo's id, content hash and file identity, but the
groups hold a small part of it: at a million photos, making a PhotoInfo of every row took longer
than all of the grouping (about 6 s of 7.5). A PhotoTable keeps those three columns in memory and
reads the whole rows of the photos a caller picks, in bulk and once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import overload

import numpy as np
import numpy.typing as npt

from clipfind.errors import ClipfindError
from clipfind.records import Ids, PhotoInfo

Ints = npt.NDArray[np.int64]
Fetch = Callable[[list[int]], list[PhotoInfo]]
"""Catalog ids -> the photos of those ids that still exist (any order)."""


class RowsGone(ClipfindError):
    """A photo of the table is no longer in the catalog: the table is older than the catalog."""


class PhotoTable(Sequence[PhotoInfo]):
    """A read-only sequence of photos, ordered by catalog id, over columns read up front.

    ``ids``, ``hashes`` and :meth:`shared_files` answer without a catalog read; indexing, slicing and
    iterating read whole rows through ``fetch`` (once per photo; :meth:`pick` reads many at once).
    A reader must use it while the catalog still holds its rows (within one catalog state).
    """

    def __init__(self, ids: Ids, hashes: Sequence[str], devices: Ints, inodes: Ints, fetch: Fetch) -> None:
        """``devices`` and ``inodes``: each photo's st_dev and st_ino, -1 where the catalog has none."""
        self.ids = ids
        self.hashes = hashes
        self._devices = devices
        self._inodes = inodes
        self._fetch = fetch
        self._built: dict[int, PhotoInfo] = {}

    def __len__(self) -> int:
        return int(self.ids.size)

    @overload
    def __getitem__(self, index: int) -> PhotoInfo: ...

    @overload
    def __getitem__(self, index: slice) -> list[PhotoInfo]: ...

    def __getitem__(self, index: int | slice) -> PhotoInfo | list[PhotoInfo]:
        if isinstance(index, slice):
            return self.pick(range(*index.indices(len(self))))
        position = range(len(self))[index]  # IndexError past either end, as a list
        photo = self._built.get(position)
        return photo if photo is not None else self.pick((position,))[0]

    def __iter__(self) -> Iterator[PhotoInfo]:
        return iter(self.pick(range(len(self))))

    def shared_files(self) -> list[list[int]]:
        """Positions of photos that are one file on disk (the same PhotoInfo.file_key: hard links,
        a folder reached twice), two or more each; found in numpy, without reading rows."""
        known = np.flatnonzero((self._devices >= 0) & (self._inodes >= 0))
        devices, inodes = self._devices[known], self._inodes[known]
        order = np.lexsort((inodes, devices))
        devices, inodes, known = devices[order], inodes[order], known[order]
        same = (devices[1:] == devices[:-1]) & (inodes[1:] == inodes[:-1])
        starts = np.flatnonzero(np.diff(np.concatenate(([0], same.astype(np.int8), [0]))) == 1)
        ends = np.flatnonzero(np.diff(np.concatenate(([0], same.astype(np.int8), [0]))) == -1)
        return [sorted(known[start : end + 1].tolist()) for start, end in zip(starts.tolist(), ends.tolist())]

    def pick(self, positions: Iterable[int]) -> list[PhotoInfo]:
        """The photos at these positions, in that order; the rows not read yet are read together."""
        wanted = list(positions)
        missing = sorted({p for p in wanted if p not in self._built})
        if missing:
            ids = self.ids[missing].tolist()
            found = {photo.id: photo for photo in self._fetch(ids)}
            if len(found) < len(missing):
                raise RowsGone("photos were removed from the catalog while it was being read; read it again")
            for position, photo_id in zip(missing, ids):
                self._built[position] = found[photo_id]
        return [self._built[p] for p in wanted]

    def without(self, positions: Iterable[int]) -> PhotoTable:
        """The table less these positions (the photos already read stay read)."""
        keep = np.ones(len(self), dtype=bool)
        keep[list(positions)] = False
        kept = np.flatnonzero(keep)
        table = PhotoTable(self.ids[kept], [self.hashes[p] for p in kept.tolist()], self._devices[kept],
                           self._inodes[kept], self._fetch)
        new_position = np.cumsum(keep) - 1
        table._built = {int(new_position[p]): photo for p, photo in self._built.items() if keep[p]}
        return table


def pick(photos: Sequence[PhotoInfo], positions: Iterable[int]) -> list[PhotoInfo]:
    """Photos at these positions of a list or a PhotoTable (whose rows are read in bulk)."""
    if isinstance(photos, PhotoTable):
        return photos.pick(positions)
    return list(map(photos.__getitem__, positions))


def content_hashes(photos: Sequence[PhotoInfo]) -> Sequence[str]:
    """Each photo's content hash; a PhotoTable's column, without reading its rows."""
    if isinstance(photos, PhotoTable):
        return photos.hashes
    return [p.content_hash for p in photos]


def catalog_ids(photos: Sequence[PhotoInfo]) -> Ids:
    """Each photo's catalog id as int64; a PhotoTable's column, without reading its rows."""
    if isinstance(photos, PhotoTable):
        return photos.ids
    return np.fromiter((p.id for p in photos), dtype=np.int64, count=len(photos))
