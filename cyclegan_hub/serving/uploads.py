"""The Space's temporary files: uploads checked as soon as they are written, and a cap on the folder's total size.

Gradio writes every upload and every output image into one folder (``gradio.utils.get_upload_folder()``, set by
``GRADIO_TEMP_DIR``). An upload that is not an image of a format the app reads (nor a video) is deleted at once
(``check_uploaded``; the job that later names it is told why), and ``TempCap`` keeps the folder under a size and
an age: the oldest files go first, except those of jobs still running.
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from contextlib import contextmanager
from pathlib import Path

from ..io import imaging, video

_REFUSED: OrderedDict[str, str] = OrderedDict()  # deleted upload -> why (bounded)
_LOCK = threading.Lock()


def upload_folder() -> str:
    from gradio.utils import get_upload_folder

    return os.path.realpath(get_upload_folder())


def check_uploaded(path: str) -> None:
    """Delete ``path`` (a file Gradio's upload just wrote) unless it is an image of a format the app reads, or a video
    container (``io.video.looks_like_video``)."""
    folder, real = upload_folder(), os.path.realpath(path)
    if not real.startswith(folder + os.sep) or not os.path.isfile(real):
        return
    try:
        imaging.read_header(real, imaging.WEB_FORMATS)
    except ValueError as err:
        if video.looks_like_video(real):  # the Video tab's: its headers are read when a job names it
            return
        why = str(err)
        if video.is_video_path(real):
            why = f"{os.path.basename(real)} is not a video file (MP4, MOV, WebM, Matroska or AVI)"
        _delete(real)
        with _LOCK:
            _REFUSED[real] = why
            while len(_REFUSED) > 4096:
                _REFUSED.popitem(last=False)


def refused_upload(path: str) -> str | None:
    """Why the upload at ``path`` was deleted when it arrived (None if it was not)."""
    with _LOCK:
        return _REFUSED.get(os.path.realpath(path))


def _delete(path: str) -> int:
    """Remove a file and its folder if that is left empty (Gradio gives each upload a folder); its size."""
    try:
        size = os.lstat(path).st_size
        os.unlink(path)
    except OSError:
        return 0
    try:
        os.rmdir(os.path.dirname(path))
    except OSError:
        pass
    return size


class TempCap:
    """Keeps ``folder`` under ``max_bytes`` and ``max_age`` seconds: every ``every`` seconds, files older than
    ``max_age`` are deleted, then the oldest others until the rest fits, never a file a running job holds
    (``holding``). Links are deleted, never followed."""

    def __init__(self, folder: str | os.PathLike, max_bytes: int, max_age: float, every: float = 1.0):
        self.folder, self.max_bytes, self.max_age, self.every = Path(folder), max_bytes, max_age, every
        self._held: dict[str, int] = {}
        self._lock = threading.Lock()
        self._stop, self._wake = threading.Event(), threading.Event()
        self._thread: threading.Thread | None = None
        self._estimate = 0  # bytes at the last pass, plus what was noted since

    @contextmanager
    def holding(self, *paths):
        """While the block runs, the files at ``paths`` are not deleted."""
        real = [os.path.realpath(p) for p in paths if isinstance(p, str)]
        with self._lock:
            for p in real:
                self._held[p] = self._held.get(p, 0) + 1
        try:
            yield
        finally:
            with self._lock:
                for p in real:
                    self._held[p] -= 1
                    if not self._held[p]:
                        del self._held[p]

    def usage(self) -> tuple[int, int]:
        """(files, bytes) in the folder now."""
        files = self._files()
        return len(files), sum(size for _, size, _ in files)

    def _files(self) -> list[tuple[str, int, float]]:
        found = []
        for root, _dirs, names in os.walk(self.folder, followlinks=False):
            for name in names:
                path = os.path.join(root, name)
                try:
                    info = os.lstat(path)
                except OSError:
                    continue
                found.append((path, info.st_size, info.st_mtime))
        return found

    def note(self, written: int) -> None:
        """``written`` bytes were just added to the folder: a pass runs at once if that may pass the cap."""
        self._estimate += written
        if self._estimate > self.max_bytes:
            self._wake.set()

    def trim(self) -> int:
        """One pass; the bytes deleted."""
        files = sorted(self._files(), key=lambda f: f[2])
        total = sum(size for _, size, _ in files)
        now, freed = time.time(), 0
        with self._lock:
            held = set(self._held)
        for path, _size, mtime in files:
            if total <= self.max_bytes and now - mtime <= self.max_age:
                break  # sorted oldest first: the rest are younger and fit
            if path in held:
                continue
            gone = _delete(path)
            total, freed = total - gone, freed + gone
        self._estimate = total
        return freed

    def start(self) -> TempCap:
        _RUNNING.append(self)
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="cyclegan-temp-cap", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self in _RUNNING:
            _RUNNING.remove(self)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.every)
            self._wake.clear()
            try:
                self.trim()
            except Exception:  # a file that vanished under us, a folder not there yet: the next pass tries again
                pass


_RUNNING: list[TempCap] = []


def note_written(written: int) -> None:
    """Tell every running cap that ``written`` bytes were added to the temporary files (an upload)."""
    for cap in list(_RUNNING):
        cap.note(written)
