"""Soak clipfind with the reliability suite's faults for a while and print what happened.

    python bench/soak.py --minutes 10        # the issue's run (default)
    python bench/soak.py --minutes 0.5       # a smoke run

Rounds of randomised faults run back to back until the time is up: SIGKILLs of `clipfind index`
(forked from a process that has imported torch, and now and then a real `python -m clipfind.cli`),
damaged or half-saved index and cache files, full-disk and read-only faults at every write point,
a photo folder that changes under the indexer, hostile files dropped into it, readers in threads
while the indexer writes, and kills while moving photos to the trash. After every round the home is
checked (integrity, one row per path, index labels and vectors equal to the catalog's) and, every
few rounds, a clean pass must converge to the folder's true state.

At the end it prints the kills, the faults injected by kind, the hostile files tried, and the files
lost, duplicated or corrupted, which must all be 0 (the exit code is 1 otherwise). Needs the real
photos in ../shared/data, as the tests do.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import errno
import hashlib
import json
import os
import random
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.reliability import faults  # noqa: E402
from tests.reliability.support import (  # noqa: E402
    FORMATS,
    PHOTOS,
    TINY_ENV,
    ForkServer,
    catalog_generation,
    catalog_paths,
    check_home,
    committed_rows,
    home_digest,
    kill_when,
    make_small_jpegs,
    readable_photos,
    run_cli,
)


class Soak:
    def __init__(self, work: Path, seed: int) -> None:
        self.work = work
        self.rng = random.Random(seed)
        self.home = work / "home"
        self.folder = work / "Photos"
        self.spare = work / "spare"
        self.xdg = work / "xdg"
        self.trash = self.xdg / "Trash" / "files"
        self.server = ForkServer()
        self.counts: collections.Counter[str] = collections.Counter()
        self.faults: collections.Counter[str] = collections.Counter()
        self.hostile: collections.Counter[str] = collections.Counter()
        self.lost: list[str] = []
        self.duplicated: list[str] = []
        self.corrupted: list[str] = []
        self.problems: list[str] = []
        self.serial = 0

    # -- set-up ----------------------------------------------------------------------------------
    def prepare(self) -> None:
        self.xdg.mkdir(parents=True)
        os.environ["XDG_DATA_HOME"] = str(self.xdg)
        os.environ.update(TINY_ENV)
        make_small_jpegs(self.spare, 200, seed=self.rng.randrange(2**32))
        spares = sorted(self.spare.iterdir())
        for i, path in enumerate(spares[:120]):
            sub = self.folder / f"album-{i % 5}"
            sub.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, sub / path.name)
        self._expect_ok(run_cli(self.home, "index", str(self.folder)), "first index")

    # -- helpers ---------------------------------------------------------------------------------
    def _name(self, stem: str) -> str:
        self.serial += 1
        return f"{stem}-{self.serial}"

    def _expect_ok(self, result, what: str) -> None:
        if result.code != 0 or "Traceback" in result.stderr:
            self.problems.append(f"{what}: exit {result.code}: {result.stderr.strip()[-500:]}")

    def _photos(self) -> list[Path]:
        return sorted(p for p in self.folder.rglob("*.jpg") if p.is_file() and not p.is_symlink()
                      and "odd" not in p.parts)

    def _digests(self) -> dict[str, str]:
        return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in self._photos()}

    def check(self, what: str) -> None:
        state = check_home(self.home)
        for problem in state.problems:
            if "twice" in problem or "orphans" in problem:
                self.duplicated.append(f"{what}: {problem}")
            elif "missing" in problem:
                self.lost.append(f"{what}: {problem}")
            else:
                self.corrupted.append(f"{what}: {problem}")

    def converge(self, what: str) -> None:
        """A clean pass: the catalog must hold exactly the folder's readable photos, each once."""
        self._expect_ok(run_cli(self.home, "index"), f"{what}: clean pass")
        self.check(f"{what}: after a clean pass")
        ok = catalog_paths(self.home, "ok")
        truth = readable_photos(self.folder)
        if len(ok) != len(set(ok)):
            self.duplicated.append(f"{what}: {len(ok) - len(set(ok))} paths twice")
        missing = truth - set(ok)
        extra = set(ok) - truth
        if missing:
            self.lost.extend(f"{what}: not indexed: {p}" for p in sorted(missing))
        if extra:
            self.duplicated.extend(f"{what}: indexed but not on disk: {p}" for p in sorted(extra))
        self.counts["clean passes"] += 1

    def refresh(self, count: int) -> None:
        """New work for the indexer: rewrite, add, move and delete photos."""
        from PIL import Image

        photos = self._photos()
        for path in self.rng.sample(photos, min(count, len(photos))):
            try:
                with Image.open(path) as im:
                    im = im.convert("RGB").rotate(self.rng.choice((90, 180, 270)), expand=True)
            except OSError:  # truncated by a folder-change round: replace it instead
                shutil.copyfile(self.rng.choice(sorted(self.spare.iterdir())), path)
                continue
            im.save(path, quality=self.rng.randrange(60, 95))
        spares = sorted(self.spare.iterdir())
        for path in self.rng.sample(spares, 4):
            shutil.copy2(path, self.folder / f"album-{self.rng.randrange(5)}" / f"{self._name('added')}.jpg")
        for path in self.rng.sample(photos, min(3, len(photos))):
            if path.exists():
                path.rename(path.parent.parent / f"album-{self.rng.randrange(5)}" / f"{self._name('moved')}.jpg")
        if len(photos) > 150:
            for path in self.rng.sample(photos, 6):
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()

    # -- rounds ------------------------------------------------------------------------------------
    def round_kill(self) -> None:
        """SIGKILL `clipfind index` after a random delay or a random number of committed changes."""
        self.refresh(self.rng.randrange(10, 40))
        before = self._digests()
        argv = ["--home", str(self.home), "index", "--batch-size", str(self.rng.choice((2, 3, 4)))]
        generation = catalog_generation(self.home)
        target = generation + self.rng.randrange(1, 40) if self.rng.random() < 0.5 else None
        until = None if target is None else (lambda: catalog_generation(self.home) >= target)
        delay = None if until else self.rng.uniform(0.02, 1.5)
        if self.rng.random() < 0.08:  # now and then the real command, imports and all
            proc = subprocess.Popen([sys.executable, "-m", "clipfind.cli", *argv], cwd=ROOT,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            kill_when(proc.pid, lambda: proc.poll() is None, until=until, delay=None if delay is None else delay + 6)
            _, err = proc.communicate()
            code, stderr, real = proc.returncode, err.decode(errors="replace"), True
        else:
            out = self.work / "child.txt"
            child = self.server.start(argv, out)
            kill_when(child.pid, child.is_alive, until=until, delay=delay)
            child.join()
            code, stderr, real = child.exitcode, out.read_text(errors="replace") if out.exists() else "", False
        if code == -signal.SIGKILL:
            self.counts["kills: indexer (real process)" if real else "kills: indexer (forked)"] += 1
        elif code != 0 or "Traceback" in stderr:
            self.problems.append(f"index run ended with {code}: {stderr[-500:]}")
        if self._digests() != before:
            self.corrupted.append("the indexer changed a photo file")
        self.check("after an indexer kill")

    def round_resume_redoes_nothing(self) -> None:
        """After kills, a full pass only does what was left: nothing committed is embedded twice."""
        from clipfind.catalog import Catalog
        from clipfind.scan import scan_folders

        catalog = Catalog(self.home / "catalog.sqlite3")
        known = catalog.known_files()
        catalog.close()
        pending = 0
        for f in scan_folders([str(self.folder)], include_skipped=True):
            k = known.get(f.path)
            pending += k is None or (k.size, k.mtime_ns) != (f.size, f.mtime_ns)
        result = run_cli(self.home, "index", "--json")
        self._expect_ok(result, "resume")
        if result.code == 0:
            summary = json.loads(result.stdout)
            done = sum(summary[k] for k in ("added", "updated", "moved", "copied", "failed"))
            if done > pending:
                self.duplicated.append(f"a resumed run redid committed work: {done} done, {pending} pending")
        self.counts["resume checks"] += 1

    def round_damage(self) -> None:
        """A kill or a bad disk while saving: temp files, mismatched pairs, truncated or flipped files."""
        self.converge("before damage")
        home = self.home
        kind = self.rng.choice(["temp files", "stale sidecar", "truncated index", "bit flip", "no sidecar",
                                "no index", "garbage sidecar", "damaged neighbours", "stale pair"])
        index, sidecar = home / "vectors.hnsw", home / "vectors.hnsw.json"
        if kind == "stale pair" and (self.work / "old-index").exists():
            for name in ("vectors.hnsw", "vectors.hnsw.json"):
                shutil.copy2(self.work / "old-index" / name, home / name)
        elif kind == "temp files" and index.exists():
            (home / "vectors.hnsw.tmp").write_bytes(index.read_bytes()[: self.rng.randrange(1, 4000)])
            (home / "vectors.hnsw.json.tmp").write_text('{"format": 1, "gen')
            (home / "neighbours.npz.123.tmp").write_bytes(b"PK\x03\x04 half")
        elif kind == "stale sidecar" and (self.work / "old-index").exists():
            shutil.copy2(self.work / "old-index" / "vectors.hnsw.json", sidecar)
        elif kind == "truncated index" and index.exists():
            data = index.read_bytes()
            index.write_bytes(data[: self.rng.randrange(len(data))])
        elif kind == "bit flip" and index.exists():
            data = bytearray(index.read_bytes())
            data[self.rng.randrange(len(data))] ^= 1 << self.rng.randrange(8)
            index.write_bytes(bytes(data))
        elif kind == "no sidecar" and sidecar.exists():
            sidecar.unlink()
        elif kind == "no index" and index.exists():
            index.unlink()
        elif kind == "garbage sidecar":
            sidecar.write_bytes(self.rng.randbytes(self.rng.randrange(0, 300)))
        elif kind == "damaged neighbours" and (home / "neighbours.npz").exists():
            data = bytearray((home / "neighbours.npz").read_bytes())
            for _ in range(self.rng.randrange(1, 4)):
                data[self.rng.randrange(len(data))] ^= 0xFF
            (home / "neighbours.npz").write_bytes(bytes(data[: self.rng.randrange(len(data) + 1)]))
        else:
            return
        self.faults[f"damaged files: {kind}"] += 1
        expected = set(catalog_paths(home, "ok"))
        result = run_cli(home, "search", "anything", "-k", "100000", "--json")
        lines = [line for line in result.lines]
        if result.code != 0 or "Traceback" in result.stderr or len(lines) > 1:
            self.problems.append(f"search after {kind}: exit {result.code}: {result.stderr[-400:]}")
        elif {h["path"] for h in json.loads(result.stdout)} != expected:
            self.lost.append(f"search after {kind} did not return every photo")
        dupes = run_cli(home, "dupes", "--json", "--threshold", "0.9")
        if dupes.code != 0 or "Traceback" in dupes.stderr:
            self.problems.append(f"dupes after {kind}: {dupes.stderr[-400:]}")
        self.check(f"after {kind}")
        if self.rng.random() < 0.3:
            (self.work / "old-index").mkdir(exist_ok=True)
            for name in ("vectors.hnsw", "vectors.hnsw.json"):
                if (home / name).exists():
                    shutil.copy2(home / name, self.work / "old-index" / name)

    def round_disk_full(self) -> None:
        """ENOSPC or EROFS at a write point while indexing: one clear line, nothing lost."""
        self.refresh(self.rng.randrange(5, 30))
        point = self.rng.choice(faults.POINTS)
        code = self.rng.choice((errno.ENOSPC, errno.ENOSPC, errno.EROFS))
        before = set(catalog_paths(self.home, "ok"))
        after = self.rng.randrange(0, 6) if point == "commit" else 0  # the others write once per run
        fault, disarm = faults.install(point, after=after, code=code)
        try:
            result = run_cli(self.home, "index", "--batch-size", str(self.rng.choice((2, 4, 8))))
            if point == "neighbours":
                result = run_cli(self.home, "dupes", "--json")
        except Exception:
            self.problems.append(f"{point} fault: {traceback.format_exc()[-800:]}")
            return
        finally:
            disarm()
        if fault.raised:
            self.faults[f"{errno.errorcode[code]} at {point}"] += 1
            clear = (result.code == 1 and len(result.lines) == 1) if point != "neighbours" else result.code == 0
            if not clear or "Traceback" in result.stderr:
                self.problems.append(f"{point} fault: exit {result.code}: {result.stderr[-400:]}")
        else:
            self.counts["faults armed but not reached"] += 1
        if [p for p in self.home.iterdir() if ".tmp" in p.name]:
            self.problems.append(f"temp files left after a {point} fault")
        now = set(catalog_paths(self.home, "ok"))
        vanished = {p for p in before - now if os.path.exists(p)}
        if vanished:
            self.lost.extend(f"dropped after a {point} fault: {p}" for p in sorted(vanished))
        self.check(f"after a {point} fault")
        search = run_cli(self.home, "search", "x", "-k", "5", "--json")
        if search.code != 0:
            self.problems.append(f"search after a {point} fault: {search.stderr[-300:]}")

    def round_read_only(self) -> None:
        if os.geteuid() != 0 or self.counts["read-only unavailable"]:
            return
        digest = home_digest(self.home)
        if subprocess.run(["mount", "--bind", str(self.home), str(self.home)], capture_output=True).returncode:
            self.counts["read-only unavailable"] += 1
            return
        try:
            if subprocess.run(["mount", "-o", "remount,ro,bind", str(self.home)], capture_output=True).returncode:
                self.counts["read-only unavailable"] += 1
                return
            self.faults["read-only home"] += 1
            self._expect_ok(run_cli(self.home, "search", "x", "--json"), "search on a read-only home")
            self._expect_ok(run_cli(self.home, "status"), "status on a read-only home")
            refused = run_cli(self.home, "index")
            if refused.code != 1 or len(refused.lines) != 1:
                self.problems.append(f"index on a read-only home: {refused.stderr[-300:]}")
        finally:
            if subprocess.run(["umount", str(self.home)], capture_output=True).returncode:
                subprocess.run(["umount", "-l", str(self.home)], capture_output=True)
        if home_digest(self.home) != digest:
            self.corrupted.append("a read-only round changed the home")

    def round_folder_changes(self) -> None:
        """The folder changes between the indexer's batches; the next pass converges."""
        from clipfind.indexer import Progress
        from clipfind.library import Library

        self.refresh(self.rng.randrange(10, 30))
        actions = collections.Counter()

        def mutate(p: Progress) -> None:
            if p.phase != "indexing":
                return
            for _ in range(self.rng.randrange(3)):
                photos = self._photos()
                if not photos:
                    return
                victim = self.rng.choice(photos)
                action = self.rng.choice(["delete", "rename", "truncate", "replace", "mv-over", "add", "fifo"])
                try:
                    if action == "delete":
                        victim.unlink()
                    elif action == "rename":
                        victim.rename(victim.with_name(f"{self._name('renamed')}.jpg"))
                    elif action == "truncate":
                        with open(victim, "r+b") as fh:
                            fh.truncate(victim.stat().st_size // 3)
                    elif action == "replace":
                        shutil.copyfile(self.rng.choice(sorted(self.spare.iterdir())), victim)
                    elif action == "mv-over":
                        target = self.rng.choice(photos)
                        if target != victim:
                            victim.rename(target)
                    elif action == "add":
                        shutil.copy2(self.rng.choice(sorted(self.spare.iterdir())),
                                     victim.parent / f"{self._name('new')}.jpg")
                    elif action == "fifo":
                        victim.unlink()
                        os.mkfifo(victim)
                except FileNotFoundError:
                    continue
                actions[action] += 1

        lib = Library(self.home, "clipfind-tiny", "none")
        try:
            lib.indexer(batch_size=3, workers=2).run(progress=mutate)
        except Exception:
            self.problems.append(f"indexing a changing folder: {traceback.format_exc()[-800:]}")
        finally:
            lib.close()
        for action, n in actions.items():
            self.faults[f"folder change: {action}"] += n
        for fifo in [p for p in self.folder.rglob("*.jpg") if p.is_fifo() and "odd" not in p.parts]:
            fifo.unlink()
        self.converge("after folder changes")

    HOSTILE = ["zero bytes", "text", "truncated", "fifo", "dev/zero", "symlink loop", "dangling link", "emoji",
               "not utf-8", "255 bytes", "socket", "formats corpus", "280 MP bomb", "200 MP bomb", "folder loop"]

    def round_hostile(self) -> None:
        odd = self.folder / "odd"
        odd.mkdir(exist_ok=True)
        photo = self.rng.choice(sorted(self.spare.iterdir())).read_bytes()
        for _ in range(self.rng.randrange(1, 5)):
            kind = self.rng.choice(self.HOSTILE)
            name = self._name("h")
            try:
                if kind == "zero bytes":
                    (odd / f"{name}.jpg").write_bytes(b"")
                elif kind == "text":
                    (odd / f"{name}.jpg").write_text("not a photo\n" * self.rng.randrange(1, 100))
                elif kind == "truncated":
                    (odd / f"{name}.jpg").write_bytes(photo[: self.rng.randrange(len(photo))])
                elif kind == "fifo":
                    os.mkfifo(odd / f"{name}.jpg")
                elif kind == "dev/zero":
                    os.symlink("/dev/zero", odd / f"{name}.jpg")
                elif kind == "symlink loop":
                    os.symlink(f"{name}-b.jpg", odd / f"{name}-a.jpg")
                    os.symlink(f"{name}-a.jpg", odd / f"{name}-b.jpg")
                elif kind == "dangling link":
                    os.symlink("nowhere.jpg", odd / f"{name}.jpg")
                elif kind == "emoji":
                    (odd / f"{name} 📷 café 中.jpg").write_bytes(photo + name.encode())
                elif kind == "not utf-8":
                    with open(os.path.join(os.fsencode(odd), name.encode() + b"-\xff\xfe.jpg"), "wb") as fh:
                        fh.write(photo + name.encode())
                elif kind == "255 bytes":
                    (odd / (name + "x" * (251 - len(name)) + ".jpg")).write_bytes(photo + name.encode())
                elif kind == "socket":
                    with socket.socket(socket.AF_UNIX) as sock:
                        sock.bind(str(odd / f"{name}.jpg"))
                elif kind == "formats corpus" and FORMATS.is_dir():
                    src = self.rng.choice(self.formats)
                    shutil.copy2(src, odd / f"{name}{src.suffix}")
                elif kind in ("280 MP bomb", "200 MP bomb") and FORMATS.is_dir():
                    src = FORMATS / ("sharp_fixtures/giant-image.jpg" if kind.startswith("280")
                                     else "pillow_heif/heif_special/200MP.heic")
                    shutil.copy2(src, odd / f"{name}{src.suffix}")
                elif kind == "folder loop":
                    os.symlink(self.folder, odd / name)
                else:
                    continue
            except OSError as exc:
                self.problems.append(f"could not make a {kind} file: {exc}")
                continue
            self.hostile[kind] += 1
        result = run_cli(self.home, "index", "--json")
        self._expect_ok(result, "indexing hostile files")
        # each one indexed or recorded with a reason
        from clipfind.catalog import Catalog
        from clipfind.scan import scan_folders

        catalog = Catalog(self.home / "catalog.sqlite3")
        failures = {f.path: f.error for f in catalog.failures()}
        catalog.close()
        ok = set(catalog_paths(self.home, "ok"))
        prefix = str(odd) + os.sep
        for f in scan_folders([str(self.folder)], include_skipped=True):
            if f.path.startswith(prefix) and f.path not in ok and not failures.get(f.path, "").strip():
                self.lost.append(f"hostile file neither indexed nor recorded: {f.path!r}")
        if len(list(odd.iterdir())) > 80:  # keep the folder from growing without end
            shutil.rmtree(odd)
        self.check("after hostile files")

    def round_concurrency(self) -> None:
        """Readers in threads, each with its own Library, while an indexer writes."""
        from clipfind.library import Library
        from clipfind.search import build_query

        self.refresh(30)
        stop = threading.Event()
        errors: list[str] = []
        queries = collections.Counter()
        paths = [str(p) for p in self._photos()[:20]]

        def reader(kind: str) -> None:
            lib = Library(self.home, "clipfind-tiny", "none")
            try:
                while not stop.is_set():
                    before = lib.catalog.ok_ids()
                    if kind == "search":
                        hits = lib.search(build_query(["a photo"]), 10)
                    elif kind == "image":
                        try:
                            hits = lib.search(build_query(images=[self.rng.choice(paths)]), 10)
                        except Exception as exc:  # the photo may have been moved by the refresh
                            if "not found" not in str(exc) and "query photo" not in str(exc):
                                raise
                            hits = []
                    else:
                        hits = []
                        groups = lib.duplicates(0.9)
                        seen: dict[str, set[int]] = {"identical": set(), "same": set(), "similar": set()}
                        for g in groups:
                            ids = {m.photo.id for m in g.members}
                            if seen[g.tier] & ids or g.members[0].photo.id != g.keeper.id:
                                errors.append("inconsistent duplicate groups")
                            seen[g.tier] |= ids
                    scores = [h.score for h in hits]
                    if scores != sorted(scores, reverse=True):
                        errors.append("scores out of order")
                    known = before | lib.catalog.ok_ids()  # the indexer may remove rows meanwhile
                    if any(h.photo.id not in known for h in hits):
                        errors.append("a hit not in the catalog")
                    queries[kind] += 1
            except Exception:
                errors.append(traceback.format_exc()[-800:])
            finally:
                lib.close()

        threads = [threading.Thread(target=reader, args=(k,)) for k in ("search", "search", "image", "dupes")]
        for t in threads:
            t.start()
        lib = Library(self.home, "clipfind-tiny", "none")
        try:
            lib.indexer(batch_size=2, workers=2).run()
        except Exception:
            errors.append(traceback.format_exc()[-800:])
        finally:
            lib.close()
            stop.set()
            for t in threads:
                t.join()
        self.counts["concurrent queries"] += sum(queries.values())
        self.problems.extend(f"concurrency: {e}" for e in errors)
        self.check("after concurrent readers")

    def round_trash(self) -> None:
        """Kill `clipfind trash` mid-way: each file in place and cataloged, or in the trash and forgotten."""
        from clipfind.library import Library

        self.converge("before trash")
        photos = [str(p) for p in self._photos()]
        chosen = self.rng.sample(photos, min(len(photos) // 4, 10))
        digests = self._digests()
        in_trash_before = self._trash_digests()
        chosen_set = set(chosen)
        out = self.work / "trash.txt"
        child = self.server.start(["--home", str(self.home), "trash", "--yes", *chosen], out,
                                  env={"XDG_DATA_HOME": str(self.xdg)})
        rows = committed_rows(self.home)
        if self.rng.random() < 0.5:
            kill_when(child.pid, child.is_alive, until=lambda r=rows - self.rng.randrange(1, 10): committed_rows(
                self.home) <= r)
        else:
            kill_when(child.pid, child.is_alive, delay=self.rng.uniform(0, 0.6))
        child.join()
        if child.exitcode == -signal.SIGKILL:
            self.counts["kills: trash"] += 1
        Library(self.home, "clipfind-tiny", "none").close()  # the next start settles an interrupted move
        catalog = set(catalog_paths(self.home))  # unreadable photos are cataloged as failed
        trashed = self._trash_digests() - in_trash_before
        gone: collections.Counter[str] = collections.Counter()
        for path, digest in digests.items():
            if os.path.exists(path):
                if path not in catalog:
                    self.lost.append(f"trash: {path} in place but dropped from the catalog")
                if hashlib.sha256(Path(path).read_bytes()).hexdigest() != digest:
                    self.corrupted.append(f"trash: {path} changed")
            elif path not in chosen_set:
                self.lost.append(f"trash: an unselected file went: {path}")
            else:
                gone[digest] += 1
                if path in catalog:
                    self.duplicated.append(f"trash: {path} in the trash but still in the catalog")
        for digest in gone.keys() | trashed.keys():
            if trashed[digest] < gone[digest]:
                self.lost.append(f"trash: {gone[digest] - trashed[digest]} file(s) neither in place nor in the trash")
            elif trashed[digest] > gone[digest]:
                self.duplicated.append("trash: a file both in place and in the trash")
        self.counts["trash rounds"] += 1
        # put trashed photos back as new files, so the folder does not run dry
        for f in list(self.trash.iterdir()) if self.trash.is_dir() else []:
            shutil.move(f, self.folder / "album-0" / f"{self._name('restored')}.jpg")
        info = self.xdg / "Trash" / "info"
        if info.is_dir():
            shutil.rmtree(info)

    def _trash_digests(self) -> collections.Counter[str]:
        if not self.trash.is_dir():
            return collections.Counter()
        return collections.Counter(hashlib.sha256(p.read_bytes()).hexdigest() for p in self.trash.iterdir())

    # -- main loop --------------------------------------------------------------------------------
    def run(self, minutes: float) -> None:
        self.formats = sorted(p for p in FORMATS.rglob("*") if p.is_file() and p.suffix) if FORMATS.is_dir() else []
        deadline = time.monotonic() + minutes * 60
        rounds = [(self.round_kill, 10), (self.round_damage, 2), (self.round_disk_full, 2),
                  (self.round_folder_changes, 1), (self.round_hostile, 1), (self.round_concurrency, 1),
                  (self.round_trash, 1), (self.round_read_only, 0.2)]
        kills_since_resume = 0
        while time.monotonic() < deadline:
            step = self.rng.choices([r for r, _ in rounds], weights=[w for _, w in rounds])[0]
            try:
                step()
            except Exception:
                self.problems.append(f"{step.__name__}: {traceback.format_exc()[-1200:]}")
            self.counts[f"rounds: {step.__name__.removeprefix('round_')}"] += 1
            kills_since_resume += step == self.round_kill
            if kills_since_resume >= 8:
                self.round_resume_redoes_nothing()
                self.converge("after kills")
                kills_since_resume = 0
        self.converge("at the end")

    def report(self, minutes_run: float, argv: list[str], seed: int) -> int:
        kills = {k: v for k, v in self.counts.items() if k.startswith("kills")}
        print()
        print(f"clipfind soak: {minutes_run:.1f} minutes, seed {seed}")
        print(f"command: {shlex.join(argv)}")
        print(f"kills: {sum(kills.values())} ({', '.join(f'{k[7:]} {v}' for k, v in sorted(kills.items()))})")
        print(f"faults injected: {sum(self.faults.values())}")
        for kind, n in sorted(self.faults.items()):
            print(f"  {kind}: {n}")
        print(f"hostile files tried: {sum(self.hostile.values())} "
              f"({', '.join(f'{k} {v}' for k, v in sorted(self.hostile.items()))})")
        other = {k: v for k, v in self.counts.items() if not k.startswith("kills")}
        print("other: " + ", ".join(f"{k} {v}" for k, v in sorted(other.items())))
        print(f"files lost: {len(self.lost)}")
        print(f"files duplicated: {len(self.duplicated)}")
        print(f"files corrupted: {len(self.corrupted)}")
        print(f"other problems (tracebacks, unclear errors): {len(self.problems)}")
        for title, items in (("lost", self.lost), ("duplicated", self.duplicated), ("corrupted", self.corrupted),
                             ("problem", self.problems)):
            for item in items[:20]:
                print(f"  {title}: {item}")
        return 1 if self.lost or self.duplicated or self.corrupted or self.problems else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="how long to run (default 10)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: a new one, printed)")
    parser.add_argument("--workdir", type=Path, default=None, help="where to work (default: a temp folder)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args()
    if not PHOTOS.is_dir():
        print(f"soak: the real photos are not at {PHOTOS}", file=sys.stderr)
        return 2
    seed = args.seed if args.seed is not None else random.randrange(2**32)
    work = Path(tempfile.mkdtemp(prefix="clipfind-soak-", dir=args.workdir))
    print(f"soak: seed {seed}, working in {work}", flush=True)
    soak = Soak(work, seed)
    start = time.monotonic()
    try:
        soak.prepare()
        soak.run(args.minutes)
    finally:
        code = soak.report((time.monotonic() - start) / 60, [sys.executable, *sys.argv], seed)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
