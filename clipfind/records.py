"""Every type a front end sees: what it builds (queries, filters, an indexing control) and what it
gets back (hits, duplicate groups, progress, reports, status, failures).

The CLI and the GUI import from here, from :mod:`clipfind.library` and from :mod:`clipfind.errors`
only; the core modules that produce these types import them from here too.
"""

from __future__ import annotations

import threading
from datetime import datetime
from dataclasses import dataclass, field
from typing import Literal, TypeAlias

import numpy as np
import numpy.typing as npt

# Unit vectors, one row per photo or query: (n, dim) float32.
Vectors: TypeAlias = npt.NDArray[np.float32]
# Catalog ids (SQLite rowids): (n,) int64, or (m, k) for neighbour tables.
Ids: TypeAlias = npt.NDArray[np.int64]
# Cosine similarities, one per id of a matching Ids array: float32.
Scores: TypeAlias = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class PhotoInfo:
    """What the catalog knows of one indexed file; enough to rank, show and clean it up."""

    id: int
    path: str
    size: int
    mtime_ns: int
    content_hash: str
    width: int | None = None
    height: int | None = None
    taken_at: str | None = None  # ISO 8601 from EXIF DateTimeOriginal, local time, no zone
    device: int | None = None  # st_dev and st_ino when indexed: two paths with the same pair are one file
    inode: int | None = None
    camera: str | None = None  # EXIF Make and Model, None when not recorded
    gps: bool = False  # the file records where it was taken (an EXIF GPS position)

    @property
    def file_key(self) -> tuple[int, int] | None:
        """Which file this is on disk, whatever path reached it (None for rows indexed before it was kept)."""
        return (self.device, self.inode) if self.device is not None and self.inode is not None else None

    @property
    def pixels(self) -> int:
        return (self.width or 0) * (self.height or 0)

    @property
    def format(self) -> str:
        """The file's format family, from its name: "jpeg", "heic", "raw", "png"..., as keeper rules name them."""
        return photo_format(self.path)


# Format families of the keeper rules: a photo's extension -> its family (others: the extension itself).
FORMAT_FAMILIES: dict[str, str] = {
    **dict.fromkeys(("jpg", "jpeg", "jpe", "jfif"), "jpeg"),
    **dict.fromkeys(("heic", "heif", "hif"), "heic"),
    **dict.fromkeys(("tif", "tiff"), "tiff"),
    **dict.fromkeys(("dng", "cr2", "cr3", "crw", "nef", "nrw", "arw", "srf", "sr2", "orf", "rw2", "raf", "pef",
                     "srw", "x3f", "3fr", "iiq", "erf", "kdc", "mrw", "raw"), "raw"),
}


def photo_format(path: str) -> str:
    """The format family of a file name ("jpeg" for IMG_1.JPG, "raw" for IMG_1.CR2); "" without an extension."""
    ext = path.rpartition(".")[2].lower() if "." in path.rpartition("/")[2] else ""
    return FORMAT_FAMILIES.get(ext, ext)


def human_bytes(n: float) -> str:
    """Sizes as people read them (decimal units, like file managers)."""
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def human_duration(seconds: float) -> str:
    """A time gap at a glance: "3 s", "4 min", "2 h", "5 days" (between two captures)."""
    for unit, size in (("days", 86_400), ("h", 3_600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit}"
    return f"{seconds:.0f} s"


# -- search ---------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Term:
    """One part of a query: a phrase or a photo, with its weight (negative: push away)."""

    kind: Literal["text", "image"]
    value: str  # a phrase, or a photo's path
    weight: float  # negative for "minus" terms


@dataclass(frozen=True, slots=True)
class Query:
    """A weighted sum of terms; build one from the user's words with ``library.build_query``."""

    terms: tuple[Term, ...]


@dataclass(frozen=True, slots=True)
class Filters:
    """Which photos a search may return, besides how well they match."""

    folder: str | None = None
    date_from: str | None = None  # ISO date or datetime, inclusive
    date_to: str | None = None
    min_score: float | None = None  # an explicit cut-off; wins over auto_cutoff
    tag: str | None = None  # only photos with this automatic tag (clipfind.tags)
    sort: SortOrder = "score"  # of the k best: by score (best first) or capture date (newest first)
    # With no min_score: cut weak matches at a score drawn from this query's own score distribution
    # (clipfind.relevance.auto_cutoff). Off by default, so a plain search returns the k best as before.
    auto_cutoff: bool = False

    @property
    def restricts_candidates(self) -> bool:
        return (self.folder is not None or self.date_from is not None or self.date_to is not None
                or self.tag is not None)


SortOrder = Literal["score", "date"]
SORT_ORDERS: tuple[SortOrder, ...] = ("score", "date")


@dataclass(frozen=True, slots=True)
class SearchHit:
    """One search result."""

    photo: PhotoInfo
    score: float  # cosine similarity to the query, -1..1


@dataclass(frozen=True, slots=True)
class SearchResults:
    """A search's hits with what the grid says about them: how many passed the cut-off."""

    hits: tuple[SearchHit, ...]  # at most k, in the order Filters.sort asked for
    passed: int  # candidates at or above the cut-off (all candidates when there is none), query photos left out
    cutoff: float | None  # the least score shown; None: no cut-off
    automatic: bool = False  # the cut-off came from the query's score distribution, not from min_score
    estimated: bool = False  # passed is estimated from a sample (a large library's approximate search)


# -- tags, albums, saved searches -----------------------------------------------------------
@dataclass(frozen=True, slots=True)
class TagScore:
    """One automatic tag of a photo: a vocabulary tag and the photo's cosine to its prompt."""

    tag: str
    score: float


@dataclass(frozen=True, slots=True)
class PhotoTags:
    """A photo with its automatic tags, best first; () when no tag clears the margin."""

    photo: PhotoInfo
    tags: tuple[TagScore, ...]


@dataclass(frozen=True, slots=True)
class TagAlbum:
    """A tag as an album for a side list: "Screenshots" with 120 photos."""

    tag: str  # the vocabulary tag (what Filters.tag takes)
    title: str  # what a side list shows
    count: int
    cleanup: bool = False  # a category people often clean up (screenshots, receipts...)


@dataclass(frozen=True, slots=True)
class SavedSearch:
    """A query with its least score, saved by name: an album the user made."""

    name: str
    query: Query
    min_score: float | None = None  # None: the automatic cut-off


# -- duplicates -----------------------------------------------------------------------------
# identical: the same bytes; same: one capture saved again (resized, re-encoded, turned, grey...),
# found from pixel fingerprints and EXIF, without the model; similar: CLIP finds the shots alike.
Tier = Literal["identical", "same", "similar"]
TIERS: tuple[Tier, ...] = ("identical", "same", "similar")
TIER_NAMES: dict[str, str] = {  # what the front ends call them
    "identical": "Identical files",
    "same": "Same photo, saved again",
    "similar": "Similar shots",
}
# Why a member is in its group: "identical" (same bytes), "fingerprint" (the pixels agree),
# "turned" / "mirrored" (in another orientation), "exif-capture" (same camera and capture time),
# "clip" (the model finds them alike).
REASONS = ("identical", "fingerprint", "turned", "mirrored", "exif-capture", "crop", "clip")


@dataclass(frozen=True, slots=True)
class DupeMember:
    """One photo of a group with its cosine similarity to the group's keeper."""

    photo: PhotoInfo
    # CLIP cosine to the keeper: 1.0 for the keeper and its byte-identical copies; in the same
    # tier, computed from the stored vectors (a re-saved copy is close, not always 1.0).
    similarity: float
    # The member this one is a copy of: byte-identical, or the same capture saved again. A copy
    # follows that member: keeping a worse copy of a picture while removing the better one
    # makes no sense, and removing the member alone would leave its picture on disk.
    copy_of: int | None = None
    # Other paths to this very file (hard links, symbolic links, bind mounts): one file, so never
    # offered apart, and moving one to the trash would free nothing.
    aliases: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()  # what put it here (REASONS); () for the keeper
    # Under a folder the keeper rules protect: never suggested for removal, and clean-up refuses it.
    protected: bool = False
    # What this photo records that the keeper does not ("GPS", "capture date", "camera"): a front end
    # says so before the photo is removed, as removing it loses that record (METADATA_NAMES).
    keeper_lacks: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class DupeGroup:
    """Photos shown together; the keeper is suggested for keeping, the others for removal."""

    tier: Tier
    keeper: PhotoInfo
    members: tuple[DupeMember, ...]  # keeper first, then by similarity desc, then path

    @property
    def others(self) -> tuple[PhotoInfo, ...]:
        """The non-keeper photos."""
        return tuple(m.photo for m in self.members[1:])

    @property
    def reclaimable_bytes(self) -> int:
        """Disk space freed by removing all :attr:`others`."""
        return sum(m.photo.size for m in self.members[1:])

    def suggested(self, include_similar: bool = False) -> tuple[PhotoInfo, ...]:
        """The default selection for removal: never the keeper nor a protected member; in the identical
        and same tiers every other member; in the similar tier only the copies of a member (a similar
        shot is not a duplicate, so the user picks), unless asked for all. Never a crop (or the
        picture it was cut from): a framing the user made, and the crop check's margin is thin."""
        members = [m for m in self.members[1:] if not m.protected and "crop" not in m.reasons]
        if include_similar or self.tier != "similar":
            return tuple(m.photo for m in members)
        return tuple(m.photo for m in members if m.copy_of is not None)

    def capture_gap(self, photo: PhotoInfo) -> float | None:
        """Seconds between the keeper's capture and this photo's (EXIF dates), None if either lacks one:
        what tells a burst (seconds) from the same scene on another day."""
        if not (photo.taken_at and self.keeper.taken_at):
            return None
        try:
            return abs((datetime.fromisoformat(photo.taken_at) - datetime.fromisoformat(self.keeper.taken_at))
                       .total_seconds())
        except ValueError:
            return None

    def copies_of(self, photo_id: int) -> tuple[PhotoInfo, ...]:
        """The members that are copies of this one (byte-identical or re-saved), which follow its fate."""
        return tuple(m.photo for m in self.members if m.copy_of == photo_id)


METADATA_NAMES = ("GPS", "capture date", "camera")  # what DupeMember.keeper_lacks may name


@dataclass(frozen=True, slots=True)
class KeeperRules:
    """The user's rules for which photo of a group to keep, applied in this order before the default
    order (pixels, size, capture date, a name without a copy marker, path): a photo the user chose
    with "Keep this one", a protected folder, a preferred folder, a preferred format, a capture date,
    a GPS position. Folders are absolute paths; a photo is under a folder when its path starts with it.
    """

    keep: tuple[str, ...] = ()  # paths the user chose to keep ("Keep this one"): kept over any other
    protect: tuple[str, ...] = ()  # folders never removed from: their photos are kept first, never suggested
    prefer_folders: tuple[str, ...] = ()  # folders whose photos are kept over others, the first listed first
    formats: tuple[str, ...] = ()  # format families (photo_format), most wanted first; unlisted ones after
    prefer_dated: bool = False  # a photo with an EXIF capture date over one without
    prefer_gps: bool = False  # a photo with a GPS position over one without

    def is_protected(self, path: str) -> bool:
        """Whether a photo lies under a protected folder."""
        return folder_position(path, self.protect) is not None

    def to_json(self) -> dict[str, object]:
        """The rules as JSON-ready values (the catalog stores them; ``clipfind rules --json`` prints them)."""
        return {"keep": list(self.keep), "protect": list(self.protect), "prefer_folders": list(self.prefer_folders),
                "formats": list(self.formats), "prefer_dated": self.prefer_dated, "prefer_gps": self.prefer_gps}

    @classmethod
    def from_json(cls, value: object) -> KeeperRules:
        """Rules written by :meth:`to_json`; the default rules for anything unreadable (a rule lost is
        safer than a crash: every clean-up still asks first)."""
        if not isinstance(value, dict):
            return cls()

        def strings(key: str) -> tuple[str, ...]:
            items = value.get(key)
            return tuple(v for v in items if isinstance(v, str)) if isinstance(items, list) else ()

        return cls(strings("keep"), strings("protect"), strings("prefer_folders"), strings("formats"),
                   value.get("prefer_dated") is True, value.get("prefer_gps") is True)


def folder_position(path: str, folders: tuple[str, ...]) -> int | None:
    """The position of the first folder that holds path, or None."""
    for i, folder in enumerate(folders):
        base = folder.rstrip("/\\") or folder
        if path == base or path.startswith(base + "/") or path.startswith(base + "\\"):
            return i
    return None


@dataclass(frozen=True, slots=True)
class NotDuplicatesMark:
    """One "Not duplicates" decision, for the ignore-list manager: the photos it holds that are still
    in the catalog, and the tier it was made in (None: made before tiers, it holds in every tier)."""

    mark: int
    tier: Tier | None
    photos: tuple[PhotoInfo, ...]
    contents: int  # how many contents (distinct pictures) the mark holds, found in the catalog or not


# -- clean-up -------------------------------------------------------------------------------
@dataclass
class TrashReport:
    """What a move to the trash did, and why anything asked for stayed."""

    moved: list[PhotoInfo] = field(default_factory=list)
    refused: list[tuple[PhotoInfo, str]] = field(default_factory=list)  # (photo, why it stayed)
    skipped_groups: list[tuple[DupeGroup, str]] = field(default_factory=list)  # left alone whole, with why
    notices: list[str] = field(default_factory=list)

    @property
    def freed_bytes(self) -> int:
        return sum(p.size for p in self.moved)


@dataclass(frozen=True, slots=True)
class TrashBatch:
    """The last clean-up that moved photos to the trash: what an undo would put back."""

    when: float  # seconds since the epoch
    photos: tuple[PhotoInfo, ...]


@dataclass
class RestoreReport:
    """What an undo of the last trash put back, and where the rest is."""

    restored: list[PhotoInfo] = field(default_factory=list)  # back at their paths and in the catalog
    failed: list[tuple[str, str]] = field(default_factory=list)  # (path, why it is not back)
    notices: list[str] = field(default_factory=list)  # e.g. where the files are when the platform cannot restore


# -- indexing -------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Progress:
    """Where an indexing run is, for a progress bar."""

    phase: Literal["scanning", "indexing", "fingerprinting", "saving", "done"]
    done: int
    total: int
    failed: int
    rate: float  # files per second in this run
    eta: float | None  # seconds
    current: str | None


class Control:
    """Pause, resume and cancel an indexer from another thread (the GUI's or a signal handler)."""

    def __init__(self) -> None:
        self._running = threading.Event()
        self._running.set()
        self._cancelled = threading.Event()

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    def cancel(self) -> None:
        self._cancelled.set()
        self._running.set()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def wait_if_paused(self) -> None:
        self._running.wait()


@dataclass
class IndexReport:
    """What an indexing run changed in the catalog."""

    added: int = 0
    updated: int = 0
    moved: int = 0
    copied: int = 0
    removed: int = 0
    failed: int = 0
    unchanged: int = 0
    encoded: int = 0  # photos that went through the model (the rest reused a stored vector)
    fingerprinted: int = 0  # photos indexed before fingerprints existed, fingerprinted from their files
    seconds: float = 0.0
    cancelled: bool = False
    notices: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        """Photos through the model per second of the whole run."""
        return self.encoded / self.seconds if self.seconds > 0 else 0.0


# -- the library's state --------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Failure:
    """A file that could not be read, or a folder that could not be listed, with why."""

    path: str
    error: str


@dataclass(frozen=True, slots=True)
class FolderStatus:
    """An indexed folder: how many files the catalog knows under it, and whether it is there now."""

    path: str
    files: int
    reachable: bool


@dataclass(frozen=True, slots=True)
class Status:
    """Everything `clipfind status` shows; :class:`Counts` is the cheap part of it."""

    home: str
    model: str | None
    pretrained: str | None
    dim: int | None
    files_indexed: int
    files_failed: int
    folders: tuple[FolderStatus, ...]
    failures: tuple[Failure, ...]
    files_waiting: int = 0  # indexed while the model could not be loaded: in duplicates, not in search


@dataclass(frozen=True, slots=True)
class Counts:
    """The few numbers a status bar shows, cheap enough to ask after every change."""

    photos: int  # indexed (searchable) photos
    failed: int  # files that could not be read
    folders: int  # indexed folders


# -- browsing (issue 13: the "All photos" timeline, the folder tree) -------------------------
MONTH_NAMES = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
               "October", "November", "December")


@dataclass(frozen=True, slots=True)
class MonthGroup:
    """One month of the timeline: photos ``start`` .. ``start + count - 1`` of :attr:`Timeline.photos`."""

    month: str  # "2024-06"
    start: int
    count: int

    @property
    def label(self) -> str:
        """The heading people read: "June 2024"."""
        year, _, month = self.month.partition("-")
        return f"{MONTH_NAMES[int(month) - 1]} {year}" if month.isdigit() and 1 <= int(month) <= 12 else self.month


@dataclass(frozen=True, slots=True)
class Timeline:
    """Every photo newest first by when it was taken (capture date, else the file's time), in months."""

    photos: tuple[PhotoInfo, ...]
    dates: tuple[str, ...]  # ISO date and time of each photo, as sorted
    months: tuple[MonthGroup, ...]

    @classmethod
    def of(cls, rows: list[tuple[PhotoInfo, str]]) -> Timeline:
        """From (photo, date) pairs already sorted newest first: consecutive photos of a month form a group."""
        months: list[MonthGroup] = []
        start, current = 0, None
        for i, (_, when) in enumerate(rows):
            month = when[:7]
            if month != current:
                if current is not None:
                    months.append(MonthGroup(current, start, i - start))
                start, current = i, month
        if current is not None:
            months.append(MonthGroup(current, start, len(rows) - start))
        return cls(tuple(p for p, _ in rows), tuple(w for _, w in rows), tuple(months))


@dataclass(frozen=True, slots=True)
class FolderNode:
    """A folder of the library with how many photos it holds, its subfolders' included."""

    path: str
    photos: int
    children: tuple[FolderNode, ...] = ()

    @property
    def name(self) -> str:
        return self.path.rstrip("/\\").rpartition("/")[2].rpartition("\\")[2] or self.path

    @classmethod
    def tree(cls, roots: list[str], direct: dict[str, int]) -> list[FolderNode]:
        """The trees under ``roots`` (indexed folders) from how many photos each folder holds directly;
        a root inside another root is part of that one's tree, folders without photos under them are left out."""
        def inside(path: str, folder: str) -> bool:
            return path.startswith(folder.rstrip("/\\") + "/") or path.startswith(folder.rstrip("/\\") + "\\")

        tops = [r for r in sorted(set(roots)) if not any(o != r and inside(r, o) for o in roots)]
        children: dict[str, set[str]] = {}
        for folder in direct:
            top = next((t for t in tops if folder == t or inside(folder, t)), None)
            while top is not None and folder != top:
                parent = folder[: max(folder.rstrip("/\\").rfind("/"), folder.rstrip("/\\").rfind("\\"))] or "/"
                children.setdefault(parent, set()).add(folder)
                folder = parent

        def node(path: str) -> FolderNode:
            kids = tuple(node(c) for c in sorted(children.get(path, ()), key=str.lower))
            return cls(path, direct.get(path, 0) + sum(k.photos for k in kids), kids)

        return [node(t) for t in tops]
