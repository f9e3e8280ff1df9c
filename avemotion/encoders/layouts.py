"""Corpus layouts: each corpus's naming rules, turning its files into labelled clips.

Every adapter maps labels to one vocabulary, :data:`EMOTIONS`, and declares the subset of
it that the corpus uses (:data:`CLASS_SUBSETS`). Files are recognised by name, whatever the
extension, so a corpus converted to FLAC (or any format soundfile or PyAV reads) still
parses. An adapter given a ``refused`` dict records there, for every media file it does not
turn into a clip, why (:mod:`avemotion.encoders.corpus_files` accounts for the other files).
Listing goes through :func:`avemotion.encoders.datasets.list_corpus`; folder layouts are
documented in docs/encoders.md.
"""

from __future__ import annotations

import csv
import re
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from avemotion.encoders.corpus_files import Refusals, media_files

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


LABEL_SHEET = "the corpus's label sheet (read for the labels, not a clip)"
"""Why a label sheet (BAUM-1s ``labels.csv``, a CSV corpus's file) is in no clip."""


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
    yield from media_files(root)


def _refuse(refused: Refusals | None, path: Path, reason: str) -> None:
    if refused is not None:
        refused[path] = reason


def _clip_id(root: Path, path: Path) -> str:
    return path.relative_to(root).with_suffix("").as_posix()


def _first_per_clip(root: Path, items: list[Item], refused: Refusals | None) -> list[Item]:
    """The first item of each clip id (listings are sorted); the others are refused naming
    the file used. Ids drop the extension, so ``X.flac`` beside ``X.ogg`` was one clip twice:
    trained on twice, and refused late by the store without naming a file."""
    kept: dict[str, Item] = {}
    for item in items:
        first = kept.setdefault(item.clip_id, item)
        if first is not item:
            same_folder = first.path.parent == item.path.parent
            used = first.path.name if same_folder else first.path.relative_to(root).as_posix()
            _refuse(refused, item.path, f"a second file of clip {item.clip_id}: {used} is used")
    return list(kept.values())


# ----------------------------------------------------------------------------- adapters
_RAVDESS = re.compile(r"^(0[1-3])-(0[12])-(0[1-8])-(0[12])-(0[12])-(0[12])-(\d\d)$")
_RAVDESS_EMOTION = dict(
    zip(("01", "02", "03", "04", "05", "06", "07", "08"), CLASS_SUBSETS["ravdess"])
)
_RAVDESS_KIND = {"01": "audio-visual", "02": "video-only", "03": "audio-only"}


def ravdess(root: Path, modality: str = "audio", refused: Refusals | None = None) -> list[Item]:
    """RAVDESS ``MM-VV-EE-II-SS-RR-AA``: modality 01 audio-visual, 02 video-only, 03 audio-only.
    Audio modality takes 01 and 03, visual takes 01 and 02, fusion 01, ``any`` all three.
    Speaker ``Actor_AA``."""
    kinds = {"audio": {"01", "03"}, "visual": {"01", "02"}, "fusion": {"01"}}
    kinds["any"] = {"01", "02", "03"}  # every file: listing the corpus's classes only
    if modality not in kinds:
        raise ValueError(f"modality: expected one of {list(kinds)}, got {modality!r}")
    wanted = kinds[modality]
    items = []
    for path in _media_files(root):
        match = _RAVDESS.match(path.stem)
        if not match:
            _refuse(refused, path, "name does not follow the RAVDESS naming MM-VV-EE-II-SS-RR-AA")
        elif match.group(1) not in wanted:
            kind = _RAVDESS_KIND[match.group(1)]
            _refuse(refused, path, f"RAVDESS {kind} file, not used for {modality}")
        else:
            label = _RAVDESS_EMOTION[match.group(3)]
            items.append(Item(path, label, f"Actor_{match.group(7)}", _clip_id(root, path)))
    return _first_per_clip(root, items, refused)


_CREMA = re.compile(r"^(\d{4})_([A-Z]{3})_(ANG|DIS|FEA|HAP|NEU|SAD)_([A-Z]{2}|X{1,2})$")


def crema_d(root: Path, modality: str = "audio", refused: Refusals | None = None) -> list[Item]:
    """CREMA-D ``ActorID_Sentence_Emotion_Level`` (``1001_DFA_ANG_XX``); a clip found both
    as audio (AudioWAV/) and video (VideoFlash/) becomes one item with ``audio_path``."""
    by_stem: dict[str, dict[str, Path]] = {}
    for path in _media_files(root):
        if _CREMA.match(path.stem):
            kind = "audio" if path.suffix.lower() in {".wav", ".flac", ".ogg", ".mp3"} else "video"
            kept = by_stem.setdefault(path.stem, {}).setdefault(kind, path)
            if kept != path:
                _refuse(
                    refused, path, f"a second {kind} file of clip {path.stem}: {kept.name} is used"
                )
        else:
            _refuse(refused, path, "name does not follow the CREMA-D naming ID_SEN_EMO_LVL")
    items = []
    for stem, paths in sorted(by_stem.items()):
        match = _CREMA.match(stem)
        assert match is not None
        label = normalise_label(match.group(3), stem)
        main = paths.get("video" if modality in ("visual", "fusion") else "audio") or next(
            iter(paths.values())
        )
        audio = paths.get("audio") if main is paths.get("video") else None
        for other in set(paths.values()) - {main, audio}:
            _refuse(refused, other, f"{main.name} is this clip's file for {modality}")
        items.append(Item(main, label, match.group(1), stem, audio))
    return items


_RML_CODE = re.compile(r"^(?:s\d+_)?(an|di|fe|ha|sa|su)[_\-]?\d*", re.IGNORECASE)


def _speaker_from_parts(parts: tuple[str, ...], pattern: str) -> str | None:
    for part in reversed(parts):
        match = re.fullmatch(pattern, part.strip(), re.IGNORECASE)
        if match:
            return f"s{int(match.group(1))}"
    return None


def rml(root: Path, modality: str = "audio", refused: Refusals | None = None) -> list[Item]:
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
        else:
            what = "emotion code (an, di, fe, ha, sa, su)" if not match else "subject folder sN"
            _refuse(refused, path, f"no RML {what} in its name or folder")
    return _first_per_clip(root, items, refused)


def enterface(root: Path, modality: str = "audio", refused: Refusals | None = None) -> list[Item]:
    """eNTERFACE'05: ``subject N/<emotion>/sentence M/sN_<code>_M.avi`` (codes an, di, fe,
    ha, sa, su); subject 6 has no sentence folders."""
    items = []
    for path in _media_files(root):
        match = re.match(r"^s_?(\d+)_?(an|di|fe|ha|sa|su)", path.stem, re.IGNORECASE)
        if match:
            label = _ALIASES[match.group(2).lower()]
            items.append(Item(path, label, f"subject{int(match.group(1))}", _clip_id(root, path)))
        else:
            _refuse(refused, path, "name does not follow the eNTERFACE naming sN_<code>_M")
    return _first_per_clip(root, items, refused)


_MEAD_FLAT = re.compile(
    r"^([MW]\d{3})_(front|down|left_30|left_60|right_30|right_60|top)_([a-z]+)_level_?(\d)_(\d{3})$"
)


def mead(root: Path, modality: str = "visual", refused: Refusals | None = None) -> list[Item]:
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
        elif match or (len(rel) >= 6 and rel[1] == "video"):
            _refuse(refused, path, "MEAD camera view other than front (only frontal video)")
        else:  # audio files are used through their video; the rest does not fit the naming
            _refuse(refused, path, "no frontal MEAD video of this name (MEAD naming)")
    return _first_per_clip(root, items, refused)


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


def emodb(root: Path, modality: str = "audio", refused: Refusals | None = None) -> list[Item]:
    """EmoDB (Berlin) ``SSTTTEV.wav``: speaker ``SS``, text ``TTT``, emotion letter ``E``."""
    items = []
    for path in _media_files(root):
        match = _EMODB.match(path.stem)
        if match:
            items.append(
                Item(path, _EMODB_EMOTION[match.group(3)], match.group(1), _clip_id(root, path))
            )
        else:
            _refuse(refused, path, "name does not follow the EmoDB naming SSTTTEV")
    return _first_per_clip(root, items, refused)


def _rows(numbers: list[int]) -> str:
    return ",".join(str(n) for n in sorted(numbers))


def _baum1s_sheet(
    label_file: Path,
) -> tuple[dict[str, str], dict[str, str], dict[str, list[int]]]:
    """``labels.csv`` read as clip stem → label, → why its clip is left out, and → the rows
    naming it. A clip whose rows disagree is left out, not given the last row's label."""
    rows: dict[str, list[tuple[int, str]]] = {}
    with open(label_file, newline="") as handle:
        for row_number, row in enumerate(csv.DictReader(handle), start=2):
            if "clip" not in row or "emotion" not in row:
                raise DatasetError(f"{label_file}: expected columns clip,emotion")
            key = (row["emotion"] or "").strip().lower()
            if not key:
                raise DatasetError(f"{label_file}:{row_number}: empty emotion")
            clip = (row["clip"] or "").strip()
            if not clip:
                raise DatasetError(f"{label_file}:{row_number}: empty clip")
            rows.setdefault(Path(clip).stem, []).append((row_number, _ALIASES.get(key, key)))
    labels: dict[str, str] = {}
    left_out: dict[str, str] = {}
    for stem, found in rows.items():
        emotions = list(dict.fromkeys(emotion for _, emotion in found))
        where = f"labels.csv:{_rows([n for n, _ in found])}"
        if len(emotions) > 1:
            shown = ", ".join(f"{e!r} (row {n})" for n, e in found)
            left_out[stem] = f"{where}: rows give different emotions {shown}"
        elif emotions[0] in EMOTIONS:  # aliases map into the vocabulary
            labels[stem] = emotions[0]
        else:
            left_out[stem] = f"{where}: emotion {emotions[0]!r} is outside the vocabulary"
    return labels, left_out, {stem: [n for n, _ in found] for stem, found in rows.items()}


def baum1s(root: Path, modality: str = "visual", refused: Refusals | None = None) -> list[Item]:
    """BAUM-1s: clips ``S001_xxx.*`` (speaker ``S001``) with labels in ``labels.csv``
    (columns ``clip,emotion``; the corpus's annotation sheet exported as CSV). Clips whose
    emotion is outside the vocabulary (e.g. ``unsure``) or whose rows disagree are left out;
    rows naming no media file are reported in one warning."""
    label_file = root / "labels.csv"
    if not label_file.is_file():
        raise DatasetError(f"{label_file}: BAUM-1s needs a labels.csv with columns clip,emotion")
    _refuse(refused, label_file, LABEL_SHEET)
    labels, left_out, numbers = _baum1s_sheet(label_file)
    items = []
    stems = set()
    for path in _media_files(root):
        stems.add(path.stem)
        speaker = re.match(r"^(S\d{3})", path.stem, re.IGNORECASE)
        if speaker and path.stem in labels:
            items.append(
                Item(path, labels[path.stem], speaker.group(1).upper(), _clip_id(root, path))
            )
        elif speaker:
            _refuse(refused, path, left_out.get(path.stem, "no row in labels.csv"))
        else:
            _refuse(refused, path, "name does not start with a BAUM-1s speaker Snnn")
    orphans = sorted(set(numbers) - stems, key=lambda stem: min(numbers[stem]))
    if orphans:  # a label with no clip: a misspelt name or a missing file, so say which rows
        rows = _rows([n for stem in orphans for n in numbers[stem]])
        names = ", ".join(orphans[:3]) + (", …" if len(orphans) > 3 else "")
        warnings.warn(
            f"{label_file}:{rows}: {len(orphans)} clip(s) with no media file under {root} "
            f"({names}); their rows are unused",
            stacklevel=2,
        )
    return _first_per_clip(root, items, refused)


ADAPTERS: dict[str, Callable[..., list[Item]]] = {
    "ravdess": ravdess,
    "crema-d": crema_d,
    "rml": rml,
    "baum-1s": baum1s,
    "enterface": enterface,
    "mead": mead,
    "emodb": emodb,
}
