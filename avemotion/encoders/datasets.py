"""Corpus adapters: list a corpus's clips with labels and speakers from its own naming.

Every adapter maps labels to one vocabulary, :data:`EMOTIONS`, and declares the subset of
it that the corpus uses (:data:`CLASS_SUBSETS`). Files are recognised by name, whatever the
extension, so a corpus converted to FLAC (or any format soundfile or PyAV reads) still
parses. Folder layouts are documented in the README.
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

EMOTIONS = (
    "neutral",
    "calm",
    "happy",
    "sad",
    "angry",
    "fearful",
    "disgust",
    "surprised",
    "contempt",
    "boredom",
)
"""The shared emotion vocabulary, in index order."""

MEDIA_SUFFIXES = {
    ".wav",
    ".flac",
    ".ogg",
    ".mp3",
    ".m4a",
    ".aac",
    ".mp4",
    ".avi",
    ".flv",
    ".mkv",
    ".mov",
    ".webm",
    ".mpg",
    ".mpeg",
}
"""Extensions considered when walking a corpus folder (content is probed, not trusted)."""

_ALIASES = {
    "neutral": "neutral",
    "neu": "neutral",
    "n": "neutral",
    "calm": "calm",
    "happy": "happy",
    "happiness": "happy",
    "hap": "happy",
    "joy": "happy",
    "ha": "happy",
    "sad": "sad",
    "sadness": "sad",
    "sa": "sad",
    "angry": "angry",
    "anger": "angry",
    "ang": "angry",
    "an": "angry",
    "fear": "fearful",
    "fearful": "fearful",
    "fea": "fearful",
    "fe": "fearful",
    "disgust": "disgust",
    "disgusted": "disgust",
    "dis": "disgust",
    "di": "disgust",
    "surprise": "surprised",
    "surprised": "surprised",
    "sur": "surprised",
    "su": "surprised",
    "contempt": "contempt",
    "boredom": "boredom",
}

CLASS_SUBSETS: dict[str, tuple[str, ...]] = {
    "ravdess": ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised"),
    "crema-d": ("neutral", "happy", "sad", "angry", "fearful", "disgust"),
    "rml": ("happy", "sad", "angry", "fearful", "disgust", "surprised"),
    "baum-1s": (
        "neutral",
        "happy",
        "sad",
        "angry",
        "fearful",
        "disgust",
        "surprised",
        "contempt",
        "boredom",
    ),
    "enterface": ("happy", "sad", "angry", "fearful", "disgust", "surprised"),
    "mead": ("neutral", "happy", "sad", "angry", "fearful", "disgust", "surprised", "contempt"),
    "emodb": ("neutral", "happy", "sad", "angry", "fearful", "disgust", "boredom"),
}
"""Classes each corpus uses, in the shared vocabulary's order."""


class DatasetError(ValueError):
    """A corpus cannot be listed; the message names the file or field."""


@dataclass(frozen=True)
class Item:
    """One clip: the media ``path``, its ``label`` (in :data:`EMOTIONS`), ``speaker``, a
    unique ``clip_id``, and an optional separate ``audio_path`` for the same clip."""

    path: Path
    label: str
    speaker: str
    clip_id: str
    audio_path: Path | None = None


def normalise_label(raw: str, source: str) -> str:
    """Map a corpus's label spelling to :data:`EMOTIONS`; raise naming ``source`` otherwise."""
    key = raw.strip().lower()
    if key not in _ALIASES:
        raise DatasetError(
            f"{source}: label {raw!r} is not a known emotion ({', '.join(EMOTIONS)})"
        )
    return _ALIASES[key]


def _media_files(root: Path) -> Iterator[Path]:
    if not root.is_dir():
        raise DatasetError(f"{root}: dataset root is not a directory")
    for path in sorted(root.rglob("*")):
        if (
            path.suffix.lower() in MEDIA_SUFFIXES
            and path.is_file()
            and not path.name.startswith(".")
        ):
            yield path


def _clip_id(root: Path, path: Path) -> str:
    return path.relative_to(root).with_suffix("").as_posix()


# ----------------------------------------------------------------------------- adapters
_RAVDESS = re.compile(r"^(0[1-3])-(0[12])-(0[1-8])-(0[12])-(0[12])-(0[12])-(\d\d)$")
_RAVDESS_EMOTION = dict(
    zip(("01", "02", "03", "04", "05", "06", "07", "08"), CLASS_SUBSETS["ravdess"])
)


def ravdess(root: Path, modality: str = "audio") -> list[Item]:
    """RAVDESS ``MM-VV-EE-II-SS-RR-AA``: modality 01 audio-visual, 02 video-only, 03 audio-only.
    Audio modality takes 01 and 03, visual takes 01 and 02. Speaker ``Actor_AA``."""
    wanted = {"audio": {"01", "03"}, "visual": {"01", "02"}, "fusion": {"01"}}.get(
        modality, {"01", "02", "03"}
    )
    items = []
    for path in _media_files(root):
        match = _RAVDESS.match(path.stem)
        if match and match.group(1) in wanted:
            label = _RAVDESS_EMOTION[match.group(3)]
            items.append(Item(path, label, f"Actor_{match.group(7)}", _clip_id(root, path)))
    return items


_CREMA = re.compile(r"^(\d{4})_([A-Z]{3})_(ANG|DIS|FEA|HAP|NEU|SAD)_([A-Z]{2}|X{1,2})$")


def crema_d(root: Path, modality: str = "audio") -> list[Item]:
    """CREMA-D ``ActorID_Sentence_Emotion_Level`` (``1001_DFA_ANG_XX``); a clip found both
    as audio (AudioWAV/) and video (VideoFlash/) becomes one item with ``audio_path``."""
    by_stem: dict[str, dict[str, Path]] = {}
    for path in _media_files(root):
        if _CREMA.match(path.stem):
            kind = "audio" if path.suffix.lower() in {".wav", ".flac", ".ogg", ".mp3"} else "video"
            by_stem.setdefault(path.stem, {})[kind] = path
    items = []
    for stem, paths in sorted(by_stem.items()):
        match = _CREMA.match(stem)
        assert match is not None
        label = normalise_label(match.group(3), stem)
        main = paths.get("video" if modality in ("visual", "fusion") else "audio") or next(
            iter(paths.values())
        )
        items.append(
            Item(
                main,
                label,
                match.group(1),
                stem,
                paths.get("audio") if main is paths.get("video") else None,
            )
        )
    return items


_RML_CODE = re.compile(r"^(?:s\d+_)?(an|di|fe|ha|sa|su)[_\-]?\d*", re.IGNORECASE)


def _speaker_from_parts(parts: tuple[str, ...], pattern: str) -> str | None:
    for part in reversed(parts):
        match = re.fullmatch(pattern, part.strip(), re.IGNORECASE)
        if match:
            return f"s{int(match.group(1))}"
    return None


def rml(root: Path, modality: str = "audio") -> list[Item]:
    """RML: one folder per subject (``s1`` … ``s8``), files named by a two-letter emotion
    code (``an``, ``di``, ``fe``, ``ha``, ``sa``, ``su``), e.g. ``s1/an1.avi``."""
    items = []
    for path in _media_files(root):
        match = _RML_CODE.match(path.stem)
        speaker = _speaker_from_parts(path.relative_to(root).parts[:-1], r"s(?:ubject)?[ _]?(\d+)")
        if speaker is None:
            file_speaker = re.match(r"^s(\d+)_", path.stem, re.IGNORECASE)
            speaker = f"s{int(file_speaker.group(1))}" if file_speaker else None
        if match and speaker:
            items.append(
                Item(path, _ALIASES[match.group(1).lower()], speaker, _clip_id(root, path))
            )
    return items


def enterface(root: Path, modality: str = "audio") -> list[Item]:
    """eNTERFACE'05: ``subject N/<emotion>/sentence M/sN_<code>_M.avi`` (codes an, di, fe,
    ha, sa, su); subject 6 has no sentence folders."""
    items = []
    for path in _media_files(root):
        match = re.match(r"^s_?(\d+)_?(an|di|fe|ha|sa|su)", path.stem, re.IGNORECASE)
        if match:
            label = _ALIASES[match.group(2).lower()]
            items.append(Item(path, label, f"subject{int(match.group(1))}", _clip_id(root, path)))
    return items


_MEAD_FLAT = re.compile(
    r"^([MW]\d{3})_(front|down|left_30|left_60|right_30|right_60|top)_([a-z]+)_level_?(\d)_(\d{3})$"
)


def mead(root: Path, modality: str = "visual") -> list[Item]:
    """MEAD: flat ``SPEAKER_front_EMOTION_levelL_NNN.mp4`` (as in ``shared/data``) or the
    original ``SPEAKER/video/front/EMOTION/level_L/NNN.mp4`` with audio under
    ``SPEAKER/audio/EMOTION/level_L/NNN.m4a``. Only frontal video is listed."""
    items = []
    for path in _media_files(root):
        rel = path.relative_to(root).parts
        match = _MEAD_FLAT.match(path.stem)
        if match and match.group(2) == "front":
            items.append(
                Item(path, normalise_label(match.group(3), str(path)), match.group(1), path.stem)
            )
        elif len(rel) >= 6 and rel[1] == "video" and rel[2] == "front":
            speaker, emotion, level = rel[0], rel[3], rel[4]
            audio = root / speaker / "audio" / emotion / level
            audio_file = (
                next((p for p in sorted(audio.glob(path.stem + ".*"))), None)
                if audio.is_dir()
                else None
            )
            clip = f"{speaker}_front_{emotion}_{level}_{path.stem}"
            items.append(Item(path, normalise_label(emotion, str(path)), speaker, clip, audio_file))
    return items


_EMODB = re.compile(r"^(\d\d)([a-z]\d\d)([WLEAFTN])([a-z])$")
_EMODB_EMOTION = {
    "W": "angry",
    "L": "boredom",
    "E": "disgust",
    "A": "fearful",
    "F": "happy",
    "T": "sad",
    "N": "neutral",
}


def emodb(root: Path, modality: str = "audio") -> list[Item]:
    """EmoDB (Berlin) ``SSTTTEV.wav``: speaker ``SS``, text ``TTT``, emotion letter ``E``."""
    items = []
    for path in _media_files(root):
        match = _EMODB.match(path.stem)
        if match:
            items.append(
                Item(path, _EMODB_EMOTION[match.group(3)], match.group(1), _clip_id(root, path))
            )
    return items


def baum1s(root: Path, modality: str = "visual") -> list[Item]:
    """BAUM-1s: clips ``S001_xxx.*`` (speaker ``S001``) with labels in ``labels.csv``
    (columns ``clip,emotion``; the corpus's annotation sheet exported as CSV). Rows whose
    emotion is outside the vocabulary (e.g. ``unsure``) are left out."""
    label_file = root / "labels.csv"
    if not label_file.is_file():
        raise DatasetError(f"{label_file}: BAUM-1s needs a labels.csv with columns clip,emotion")
    labels: dict[str, str] = {}
    with open(label_file, newline="") as handle:
        for row_number, row in enumerate(csv.DictReader(handle), start=2):
            if "clip" not in row or "emotion" not in row:
                raise DatasetError(f"{label_file}: expected columns clip,emotion")
            key = (row["emotion"] or "").strip().lower()
            if key in _ALIASES:
                labels[Path(row["clip"]).stem] = _ALIASES[key]
            elif not key:
                raise DatasetError(f"{label_file}:{row_number}: empty emotion")
    items = []
    for path in _media_files(root):
        speaker = re.match(r"^(S\d{3})", path.stem, re.IGNORECASE)
        if speaker and path.stem in labels:
            items.append(
                Item(path, labels[path.stem], speaker.group(1).upper(), _clip_id(root, path))
            )
    return items


ADAPTERS: dict[str, Callable[..., list[Item]]] = {
    "ravdess": ravdess,
    "crema-d": crema_d,
    "rml": rml,
    "baum-1s": baum1s,
    "enterface": enterface,
    "mead": mead,
    "emodb": emodb,
}


def _inside(root: Path, raw: str, allow_outside: bool, source: str) -> Path:
    path = Path(raw)
    # lexical check (symlinks placed inside the root by its owner are allowed)
    resolved = Path(os.path.abspath(path if path.is_absolute() else root / path))
    if not allow_outside and not resolved.is_relative_to(os.path.abspath(root)):
        raise DatasetError(
            f"{source}: path {raw!r} is outside the dataset root {root} (pass allow_outside_root to permit)"
        )
    return resolved


def csv_items(
    csv_file: Path, root: Path | None = None, allow_outside_root: bool = False
) -> list[Item]:
    """A generic CSV ``path,label,speaker[,audio_path]`` (a header row is optional), like the
    official code's ``training_data.csv``. Relative paths resolve against ``root`` (default:
    the CSV's folder) and may not leave it unless ``allow_outside_root``."""
    csv_file = Path(csv_file)
    root = Path(root) if root is not None else csv_file.parent
    if not csv_file.is_file():
        raise DatasetError(f"{csv_file}: no such CSV file")
    items, seen = [], set()
    with open(csv_file, newline="") as handle:
        rows = list(csv.reader(handle))
    if rows and [c.strip().lower() for c in rows[0][:3]] == ["path", "label", "speaker"]:
        rows = [[""]] + rows[1:]
    for number, row in enumerate(rows, start=1):
        if not row or not any(cell.strip() for cell in row):
            continue
        source = f"{csv_file}:{number}"
        if len(row) < 3:
            raise DatasetError(
                f"{source}: expected path,label,speaker[,audio_path], got {len(row)} field(s)"
            )
        path = _inside(root, row[0].strip(), allow_outside_root, source)
        audio = (
            _inside(root, row[3].strip(), allow_outside_root, source)
            if len(row) > 3 and row[3].strip()
            else None
        )
        speaker = row[2].strip()
        if not speaker:
            raise DatasetError(f"{source}: empty speaker")
        clip_id = (
            path.relative_to(root.resolve()).with_suffix("").as_posix()
            if path.is_relative_to(root.resolve())
            else str(path)
        )
        while clip_id in seen:
            clip_id += "+"
        seen.add(clip_id)
        items.append(Item(path, normalise_label(row[1], source), speaker, clip_id, audio))
    return items


def list_dataset(
    name: str,
    root: str | os.PathLike[str],
    modality: str = "audio",
    allow_outside_root: bool = False,
) -> tuple[list[Item], tuple[str, ...]]:
    """List corpus ``name`` under ``root``: its items and its class subset (in vocabulary order).

    ``name`` is one of :data:`ADAPTERS` or ``"csv"`` (``root`` is then the CSV file, or a
    folder holding ``data.csv``).
    """
    root = Path(root)
    key = name.lower().replace("_", "-").replace("'05", "").replace("berlin", "emodb")
    if key == "csv":
        csv_file = root if root.suffix.lower() == ".csv" else root / "data.csv"
        items = csv_items(csv_file, allow_outside_root=allow_outside_root)
        present = {item.label for item in items}
        classes = tuple(e for e in EMOTIONS if e in present)
    elif key in ADAPTERS:
        items = ADAPTERS[key](root, modality=modality)
        classes = CLASS_SUBSETS[key]
    else:
        raise DatasetError(f"dataset: unknown corpus {name!r}; known: {sorted(ADAPTERS) + ['csv']}")
    if not items:
        raise DatasetError(
            f"{root}: no {name} clips found (see the README for the expected layout)"
        )
    return items, classes


def select_speakers(
    items: list[Item], speakers: list[str] | None = None, exclude: list[str] | None = None
) -> list[Item]:
    """Keep items of ``speakers`` (all when ``None``) and drop those of ``exclude``."""
    known = {item.speaker for item in items}
    for field, names in (("speakers", speakers), ("exclude_speakers", exclude)):
        unknown = sorted(set(names or ()) - known)
        if unknown:
            raise DatasetError(f"{field}: unknown speaker(s) {unknown}; known: {sorted(known)}")
    kept = [
        i
        for i in items
        if (speakers is None or i.speaker in speakers) and i.speaker not in set(exclude or ())
    ]
    if not kept:
        raise DatasetError("speakers: the selection holds no clips")
    return kept
