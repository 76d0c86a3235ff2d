"""Event-loop stalls of the real app window, offscreen, on a library of N photos (issue 10, "Measured").

A temporary home holds N synthetic photos written through the catalog as the indexer writes them
(clustered unit vectors, dim 512, with near-duplicate bursts and byte-identical copies:
`bench.dupes.photos_with_duplicates`; same-photo fingerprints from windows of real photos, a fifth of
them re-saved copies), its vector index built and saved as an index pass leaves it.
Two folders of the catalog are real files on disk, so that the app's own calls touch them: 1,000
photos to trash (small files, hashed as indexed) and N/10 photos in a folder to remove; the rest
are rows whose files are outside every indexed folder. The model is ViT-B-32 with random weights
(`--pretrained none`, `--precision fp32`): its load and first text encoding are real work.

The real `gui.main_window.MainWindow` opens on that home (offscreen Qt platform, a private settings
file and a private XDG trash). A 10 ms QTimer runs on the GUI thread throughout; the figure of a
step is the longest the event loop kept it waiting beyond its 10 ms (a window that does not repaint
or answer input for that long) from the step's first action until the window is idle again:

* splash: what the app does before its window exists (gui/app.py): a splash screen, with nothing to
  click, while `Library.prepare` does the opens that hold the GIL (torch's import, the saved index);
  its stall is reported, not held to the target, as no window is there to freeze;
* startup: constructing and showing the window, until the model is loaded and the catch-up index
  pass over the two real folders has ended;
* first text search: typing a query and Enter, until the results are on screen;
* Duplicates after a catalog change: one catalog write (the generation moves on, so the saved
  neighbour graph is stale), then switching to the Duplicates tab, until its groups are shown
  (the graph is rebuilt: the wall time of the step says how long that took);
* 20 slider moves: 0.005 steps every 50 ms, as a drag, until the last regroup is shown;
* trashing 1,000 photos from the search view (confirmation answered yes);
* removing the folder of N/10 photos.

`--gui DIR` measures another copy of the app package (e.g. the code before issue 10, saved with
`cp -r gui /tmp/gui_before`) against the same data; it is imported as `gui` from a temporary folder.

Default 100,000 photos, `--full` 1,000,000, `--photos N` any size.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from bench import common  # noqa: E402 (puts the repository first on sys.path)

PHOTOS = 100_000
FULL = 1_000_000
TRASHED = 1_000
STALL_TARGET_MS = 100.0
COMMIT_ROWS = 2_000
STEP_TIMEOUT_S = 1_800.0
SPLASH = "splash, before the window"  # a graph build at 1M photos takes a while


def parse(argv: list[str] | None):  # noqa: ANN201
    p = common.parser(__doc__.split("\n\n")[0])
    p.add_argument("--photos", type=int, help=f"library size (default {PHOTOS:,}; --full: {FULL:,})")
    p.add_argument("-v", "--verbose", action="store_true", help="list every stall over 50 ms, when it began")
    p.add_argument("--gui", metavar="DIR", help="measure this copy of the gui package instead of the repository's")
    return p.parse_args(argv)


def use_gui_copy(source: Path, scratch: Path) -> None:
    """Import the app package from `source` as `gui` (an older copy speaks to the core of today)."""
    target = scratch / "guipath"
    shutil.copytree(source, target / "gui")
    (target / "assets").symlink_to(common.ROOT / "assets")  # an older gui looked for its icons beside itself
    sys.path.insert(0, str(target))
    import importlib

    for name, new in {"clipfind.modelspec": "clipfind.embedding.spec"}.items():  # modules moved since
        try:
            importlib.import_module(name)
        except ImportError:
            sys.modules[name] = importlib.import_module(new)


def private_trash(root: Path) -> None:
    """The system trash of this run: $XDG_DATA_HOME/Trash under the temporary folder."""
    xdg = root / "xdg"
    os.environ["XDG_DATA_HOME"] = str(xdg)
    from send2trash import plat_other

    plat_other.XDG_DATA_HOME = os.fsencode(xdg)
    plat_other.HOMETRASH_B = os.fsencode(xdg / "Trash")
    plat_other.HOMETRASH = str(xdg / "Trash")


def build_home(root: Path, n: int) -> tuple[Path, Path, Path]:
    """(home, folder of the photos to trash, folder to remove), catalog and index written, nothing timed."""
    from bench.dupes import photos_with_duplicates
    from bench.query import DIM, SPEC
    from clipfind.annindex import build_index
    from clipfind.catalog import Catalog, FileStamp
    from clipfind.home import CATALOG_FILE, INDEX_FILE
    from clipfind.imageload import content_hash

    home, trash_dir, remove_dir, elsewhere = root / "home", root / "trash-me", root / "remove-me", root / "elsewhere"
    for d in (home, trash_dir, remove_dir):
        d.mkdir(parents=True)
    removed = max(n // 10, 1)
    photos = photos_with_duplicates(n, seed=0)
    rng = __import__("numpy").random.default_rng(1)
    with common.timer() as fill:
        catalog = Catalog(home / CATALOG_FILE)
        catalog.bind_model(SPEC.identity, DIM, SPEC.name, SPEC.pretrained)
        catalog.add_folder(str(trash_dir))
        catalog.add_folder(str(remove_dir))
        mtime0 = 1_600_000_000 * 10**9
        for start in range(0, n, COMMIT_ROWS):
            with catalog.transaction():
                for i in range(start, min(n, start + COMMIT_ROWS)):
                    taken = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(mtime0 // 10**9 + 600 * i))
                    if i < TRASHED + removed:  # a real file, stamped as the indexer stamps it
                        folder = trash_dir if i < TRASHED else remove_dir / f"{i // 1000:03d}"
                        folder.mkdir(exist_ok=True)
                        path = folder / f"IMG_{i:07d}.jpg"
                        data = rng.bytes(2048)
                        path.write_bytes(data)
                        st = path.stat()
                        catalog.put_photo(str(path), st.st_size, st.st_mtime_ns, content_hash(data), 4032, 3024,
                                          taken, photos.vectors[i], FileStamp(st.st_dev, st.st_ino, st.st_ctime_ns))
                    else:
                        path = elsewhere / f"{2010 + i // 20_000}" / f"{i // 500:05d}" / f"IMG_{i:07d}.jpg"
                        catalog.put_photo(str(path), 800_000 + i % 7_000_000, mtime0 + i, photos.hashes[i],
                                          4032, 3024, taken, photos.vectors[i])
    with common.timer() as prints:
        fingerprint_all(catalog, n)
    with common.timer() as build:
        index = build_index(catalog, DIM)
        index.save(home / INDEX_FILE, SPEC.identity)
    catalog.close()
    common.note(f"setup, not timed: {n:,} catalog rows ({TRASHED + removed:,} real files) in {fill():.1f} s, "
                f"fingerprints in {prints():.1f} s, index built and saved in {build():.1f} s")
    return home, trash_dir, remove_dir


def fingerprint_all(catalog, n: int) -> None:  # noqa: ANN001
    """Every row gets a same-photo fingerprint, as an index pass leaves it, so the Duplicates tab pays
    for the same tier too: windows of real photos' thumbnails, a fifth of them re-saved copies
    (bench.dupes_quality.synthetic)."""
    import numpy as np

    from bench.dupes_quality import synthetic
    from clipfind.fingerprint import thumbnail

    from clipfind.imageload import load_image

    real = [thumbnail(load_image(str(path), min_side=224).image) for path in common.real_photos()[:40]]
    thumbs = synthetic(np.stack(real), n, np.random.default_rng(2))
    ids = [r[0] for r in catalog._db.execute("SELECT id FROM files ORDER BY id")]  # bench setup only
    for start in range(0, n, COMMIT_ROWS * 10):
        catalog.set_fingerprints([(i, thumbs[k].tobytes(), None)
                                  for k, i in enumerate(ids[start:start + COMMIT_ROWS * 10], start)])


class Heartbeat:
    """A 10 ms timer on the GUI thread; `worst_ms` is the longest it was kept waiting beyond 10 ms."""

    def __init__(self) -> None:
        from PySide6.QtCore import QTimer

        self.worst_ms = 0.0
        self.stalls: list[tuple[float, float]] = []  # (seconds into the step, ms) of each stall over 50 ms
        self._start = self._last = time.perf_counter()
        self._timer = QTimer(interval=10, timeout=self._tick)
        self._timer.start()

    def _tick(self) -> None:
        now = time.perf_counter()
        stall = (now - self._last) * 1000 - 10
        if stall > 50:
            self.stalls.append((self._last - self._start, stall))
        self.worst_ms = max(self.worst_ms, stall)
        self._last = now

    def reset(self) -> None:
        self._tick()
        self.worst_ms = 0.0
        self.stalls = []
        self._start = time.perf_counter()

    def read(self) -> float:
        self._tick()  # a stall that has not let the timer fire yet counts too
        return self.worst_ms


def guard_signal_refcounts() -> None:
    """Apply gui/compat.py of this repository whatever gui copy is measured (an older copy lacks it):
    PySide6 6.12.0 loses a reference to True per Python emit and to None per void call, and a long run would abort."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("_clipfind_gui_compat", common.ROOT / "gui" / "compat.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.keep_singletons_alive()


class GcPauses:
    """The longest garbage collection (ms, generation) in a step: a collection holds the GIL, so the event loop waits."""

    def __init__(self) -> None:
        import gc

        self.worst: tuple[float, int] = (0.0, 0)
        self._began = 0.0
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._began = time.perf_counter()
        else:
            self.worst = max(self.worst, ((time.perf_counter() - self._began) * 1000, info["generation"]))

    def reset(self) -> None:
        self.worst = (0.0, 0)


def spin(until: Callable[[], bool], timeout_s: float = STEP_TIMEOUT_S) -> None:
    """Run the event loop (as app.exec would) until `until()` holds."""
    from PySide6.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    deadline = time.monotonic() + timeout_s

    def check() -> None:
        if until() or time.monotonic() > deadline:
            loop.quit()
        else:
            QTimer.singleShot(5, check)

    QTimer.singleShot(0, check)
    loop.exec()
    if not until():
        raise TimeoutError("the step did not finish in time")


def idle(window) -> bool:  # noqa: ANN001
    """No work left: this app's task runners (or, for an app without them, its indexer and model load)."""
    done = getattr(window, "idle", None)
    if done is not None:
        return bool(done)
    return window.model_ready and window.indexer is None and window._queued is None


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    n = args.photos or (FULL if args.full else PHOTOS)
    common.section(f"GUI event-loop stalls, {n:,} photos ({'gui from ' + args.gui if args.gui else 'this gui'})")
    from bench.query import machine_note

    machine_note()
    with tempfile.TemporaryDirectory(prefix="clipfind-gui-latency-") as tmp:
        root = Path(tmp)
        if args.gui:
            use_gui_copy(Path(args.gui).resolve(), root)
        private_trash(root)
        home, trash_dir, remove_dir = build_home(root, n)
        rows = run_steps(home, root, trash_dir, remove_dir, args.verbose)
    common.section("longest event-loop stall per step (10 ms heartbeat)")
    for name, stall_ms, wall_s in rows:
        held = not name.startswith(SPLASH)  # no window exists yet: nothing to freeze
        common.figure(f"{name} (step took {wall_s:.1f} s)", stall_ms, "ms",
                      target=f"<= {STALL_TARGET_MS:.0f} ms" if held else "none (no window yet)",
                      met=stall_ms <= STALL_TARGET_MS if held else None, digits=0)
    return 0


def run_steps(home: Path, root: Path, trash_dir: Path, remove_dir: Path,
              verbose: bool = False) -> list[tuple[str, float, float]]:
    import gc

    from PySide6.QtCore import QSettings, Qt
    from PySide6.QtWidgets import QApplication

    from bench.query import SPEC
    from clipfind.catalog import Catalog
    from clipfind.home import CATALOG_FILE
    from clipfind.library import Library

    app = QApplication.instance() or QApplication(["clipfind-gui-latency"])
    import gui.main_window
    import gui.search_view

    guard_signal_refcounts()

    beat = Heartbeat()
    pauses = GcPauses()
    rows: list[tuple[str, float, float]] = []

    def step(name: str, action: Callable[[], None], until: Callable[[], bool]) -> None:
        spin(lambda: True)
        beat.reset()
        pauses.reset()
        start = time.perf_counter()
        action()
        spin(until)
        rows.append((name, beat.read(), time.perf_counter() - start))
        print(f"  {name}: longest stall {rows[-1][1]:.0f} ms, {rows[-1][2]:.1f} s", flush=True)
        if verbose and pauses.worst[0]:
            print(f"    longest garbage collection: {pauses.worst[0]:.0f} ms (generation {pauses.worst[1]})", flush=True)
        if beat.stalls and verbose:
            print("    stalls over 50 ms (s into the step, ms): "
                  + ", ".join(f"{at:.2f}: {ms:.0f}" for at, ms in beat.stalls), flush=True)

    library = Library(home, SPEC.name, "none", precision="fp32")
    settings = QSettings(str(root / "settings.ini"), QSettings.Format.IniFormat)
    holder: dict[str, object] = {}

    def prepare() -> None:  # as gui/app.py does before its window exists (a copy of the gui without it: nothing)
        try:
            from gui.splash import run_behind, splash_screen
        except ImportError:
            return
        holder["splash"] = splash = splash_screen()
        run_behind(splash, library.prepare)

    def start() -> None:
        window = gui.main_window.MainWindow(library, settings)
        window.resize(1200, 800)
        window.show()
        if "splash" in holder:
            holder["splash"].finish(window)
        holder["window"] = window

    step(f"{SPLASH} (torch import, index load)", prepare, lambda: True)
    step("startup (model load, catch-up index pass)", start, lambda: idle(holder["window"]))
    window = holder["window"]
    if not window.model_ready:
        raise SystemExit("the model did not load: " + window.banner.text())

    view = window.search
    window._show_welcome(False)

    def search() -> None:
        view.text.setText("a dog on a beach at sunset")
        view.text.returnPressed.emit()

    step("first text search", search, lambda: idle(window) and view.model.rowCount() > 0)

    def change_then_switch() -> None:
        catalog = Catalog(home / CATALOG_FILE)  # one write from elsewhere: the saved neighbour graph is stale now
        photo = catalog.photo_by_path(str(next(trash_dir.iterdir())))
        catalog.put_photo(photo[0].path, photo[0].size, photo[0].mtime_ns, photo[0].content_hash, photo[0].width,
                          photo[0].height, photo[0].taken_at, photo[1])
        catalog.close()
        window.tabs.setCurrentWidget(window.dupes)

    step("Duplicates tab after a catalog change", change_then_switch,
         lambda: idle(window) and bool(window.dupes.groups))

    moves = {"left": 20}

    def drag() -> None:
        from PySide6.QtCore import QTimer

        def move() -> None:
            window.dupes.slider.setValue(window.dupes.slider.value() - 5)
            moves["left"] -= 1
            if moves["left"]:
                QTimer.singleShot(50, move)

        move()

    step("20 slider moves", drag, lambda: moves["left"] == 0 and not window.dupes._debounce.isActive()
         and idle(window))

    window.tabs.setCurrentWidget(view)
    spin(lambda: idle(window))
    gui.search_view.confirm_trash = lambda parent, photos: True
    catalog = Catalog(home / CATALOG_FILE)
    photos = [catalog.photo_by_path(str(p))[0] for p in sorted(trash_dir.iterdir())]
    catalog.close()
    from clipfind.records import SearchHit

    hits = [SearchHit(p, 0.5) for p in photos]
    view.model.set_hits(hits)

    step(f"trashing {len(hits):,} photos", lambda: view.trash(hits),
         lambda: idle(window) and not any(trash_dir.iterdir()))
    trashed = len(list((root / "xdg" / "Trash" / "files").iterdir()))
    common.note(f"{trashed:,} files in the private trash")

    step("removing a folder", lambda: window.apply_folder_changes([], [str(remove_dir)]),
         lambda: idle(window) and str(remove_dir) not in window.library.folders())

    window.close()
    spin(lambda: True)
    del window, holder
    gc.collect()
    app.processEvents()
    return rows


if __name__ == "__main__":
    sys.exit(main())
