"""Whether a node will load a model file one of its inputs names, or has it switched off.

Why a module of its own: LoRA stacks, power loaders and multi-ControlNet stacks name files they then skip,
and a file a prompt names but never loads must not look used (see the README: *referenced* is not *used*).
Packs spell their switches in many ways, so these are general rules on input names and values, not a
table of pack names:

- An entry's siblings are the inputs that share its key: the same index (`lora_name_1`, `switch_1`,
  `model_weight_1`), the same dotted prefix (`lora_1.lora`, `lora_1.on`; V3 groups `loras.0.name`), or the
  same dict (`{"on": false, "lora": "x.safetensors", "strength": 1}`).
- A sibling whose words are switch words (`on`, `active`, `enabled`, `switch`, ...) and whose value says
  off (`false`, `"Off"`, `0`) switches the entry off.
- When every numeric sibling strength (`strength*`, `*weight*`, `*_wt_*`, `*_str_*`) is 0, nothing loads.
- An entry whose index is beyond the node's count input (`lora_count`, `num_loras`) is not read.
- A numbered entry whose own optional image input (`image_1` beside `controlnet_1`) is not connected is not
  applied: a multi-ControlNet stack applies a ControlNet only to an image.

Anything these rules do not recognise counts as on: when unsure, a file stays used.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

SWITCH_WORDS = frozenset({"on", "active", "enabled", "enable", "switch", "toggle"})
STRENGTH_WORDS = frozenset({"strength", "weight", "wt", "str"})
COUNT_WORDS = frozenset({"count", "num"})
TARGET_WORDS = frozenset({"model", "clip", "unet", "two"})
"""Words in a strength's name that say what it scales, not which file: `strength_model`, `strengthTwo`."""
ROLE_WORDS = SWITCH_WORDS | STRENGTH_WORDS | COUNT_WORDS
OFF_VALUES = frozenset({"off", "false", "no", "disabled", "disable", "0"})

_TOKEN = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")


@dataclass(frozen=True)
class Key:
    """An input name split the way packs build them: `lora_name_1` -> group ("", 1), words {lora, name}."""

    group: tuple[str, int | None]  # (dotted prefix, trailing index)
    words: frozenset[str]


@lru_cache(maxsize=4096)
def key_of(name: str) -> Key:
    prefix, _, last = name.rpartition(".")
    tokens = _TOKEN.findall(last)
    digits = [t for t in tokens if t.isdigit()]
    return Key((prefix, int(digits[-1]) if digits else None), frozenset(t.lower() for t in tokens if not t.isdigit()))


def says_off(value) -> bool:
    """A switch's value that means off: false, 0, "Off", "disabled"... (a link or anything else: on)."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float)):
        return value == 0
    return isinstance(value, str) and value.strip().lower() in OFF_VALUES


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _counts_kind(key: Key, entry: Key) -> bool:
    """A count input (`lora_count`, `num_loras`) whose other words name the entry's kind (or nothing)."""
    if not key.words & COUNT_WORDS:
        return False
    kind = key.words - COUNT_WORDS
    return not kind or bool(kind & entry.words) or any(w.rstrip("s") in entry.words for w in kind)


@dataclass(frozen=True)
class Siblings:
    """The inputs that can switch one entry off: its switches, its strengths, and the counts covering it."""

    switches: tuple[str, ...] = ()
    strengths: tuple[str, ...] = ()
    counts: tuple[str, ...] = ()


NO_SIBLINGS = Siblings()


def may_switch(names) -> bool:
    """Whether any of these input names is a switch, a strength or a count: if none is, no entry is off."""
    return any(isinstance(n, str) and key_of(n).words & ROLE_WORDS for n in names)


def siblings(names: tuple[str, ...], name: str) -> Siblings:
    """Which of a node's inputs (`names`, as the prompt gives them) may switch the entry `name` off.

    Depends on the input names alone: callers keep the answer per tuple of names, so for the same nodes
    prompt after prompt only the values are read (a plain loader has no siblings at all).
    """
    entry = key_of(name)
    switches, strengths, counts = [], [], []
    for other in names:
        if other == name or not isinstance(other, str):
            continue
        key = key_of(other)
        if key.group == entry.group:
            own = key.words - entry.words
            if own and own <= SWITCH_WORDS:
                switches.append(other)
            elif key.words & STRENGTH_WORDS and key.words - STRENGTH_WORDS - TARGET_WORDS <= entry.words:
                strengths.append(other)
        if entry.group[1] is not None and key.group == ("", None) and _counts_kind(key, entry):
            counts.append(other)
    if not (switches or strengths or counts):
        return NO_SIBLINGS
    return Siblings(tuple(switches), tuple(strengths), tuple(counts))


def is_off(inputs: dict, name: str, found: Siblings) -> bool:
    """Whether the node skips the file its input `name` names, by the values of its `siblings` in `inputs`."""
    if found is NO_SIBLINGS:
        return False
    if any(says_off(inputs[s]) for s in found.switches):
        return True
    index = key_of(name).group[1]
    if any(_is_count(inputs[c]) and index > inputs[c] for c in found.counts):
        return True
    strengths = [inputs[s] for s in found.strengths if _is_number(inputs[s])]
    return bool(strengths) and all(s == 0 for s in strengths)


def dict_off(values: dict) -> bool:
    """Whether an entry given as a dict (`{"on": false, "lora": ...}`) is switched off by its own keys."""
    strengths = []
    for name, value in values.items():
        if not isinstance(name, str):
            continue
        key = key_of(name)
        if key.words and key.words <= SWITCH_WORDS and says_off(value):
            return True
        if key.words & STRENGTH_WORDS and _is_number(value):
            strengths.append(value)
    return bool(strengths) and all(s == 0 for s in strengths)


def weights_off(weights: str) -> bool:
    """`<lora:NAME:0>` or `<lora:NAME:0:0>`: every weight given is 0 (none given: the default, 1)."""
    numbers = []
    for part in weights.split(":"):
        try:
            numbers.append(float(part))
        except ValueError:
            return False  # a weight we cannot read: when unsure, on
    return bool(numbers) and all(n == 0 for n in numbers)


def same_entry(name: str, candidates) -> tuple[str, ...]:
    """The candidates that belong to the same numbered entry as `name` (`image_1` for `controlnet_1`); none
    for an input without a number, whose optional inputs belong to the whole node."""
    group = key_of(name).group
    if group[1] is None:
        return ()
    return tuple(c for c in candidates if c != name and key_of(c).group == group)
