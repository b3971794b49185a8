"""The values every layer shares: names of things, model keys, days, what one prompt used.

Why a module of its own: it imports nothing of ours, so every other module may import it and no arrow
ever points up. Times are integer Unix seconds, served as ISO 8601 UTC text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import lru_cache

BUILTIN_PACKAGE = "__builtin__"
"""Package name of core ComfyUI, comfy_extras and API nodes (the Node Stats name, kept for old data)."""


UNKNOWN_PACKAGE = "__unknown__"
"""Package name of a class_type that no loaded pack provides (a missing or removed pack)."""


DAY = 86_400


DEFAULT_USER = "default"
"""The user of every prompt when ComfyUI runs without --multi-user (ComfyUI's own name for it)."""


RESULTS = ("success", "error", "interrupted")
"""How an accepted prompt ended, as ComfyUI's execution messages say."""


KINDS = ("prompt", "node", "package", "model")
"""What a daily row counts: whole prompts (item ''), node types, packs, models ('<type>/<name>')."""


TIERS = ("used", "unused_new", "consider_removing", "safe_to_remove", "uninstalled")


REMOVAL_ORDER = ("used", "unused_new", "consider_removing", "safe_to_remove")
"""Installed tiers from 'keep' to 'remove'; a cap keeps an item at or before a given tier."""


@dataclass(frozen=True)
class PromptUse:
    """Everything one prompt used, each item once, as the writer extracted it, and ComfyUI's verdict on it."""

    ts: int
    nodes: dict[str, str]  # class_type -> package
    models: frozenset[tuple[str, str]] = frozenset()  # (model_type, model_name)
    user: str = DEFAULT_USER
    accepted: bool = True  # False: ComfyUI's validation refused it (HTTP 400), so nothing in it was used
    referenced: frozenset[tuple[str, str]] = frozenset()  # named but switched off: never a use

    def daily_keys(self) -> list[tuple[str, int, str, str]]:
        """(kind, day, item, user): the key of every daily row this prompt counts in, each once."""
        day, user = self.ts // DAY, self.user
        return [
            ("prompt", day, "", user),
            *[("node", day, class_type, user) for class_type in self.nodes],
            *[("package", day, package, user) for package in set(self.nodes.values())],
            *[("model", day, model_key(t, n), user) for t, n in self.models],
        ]


@dataclass(frozen=True)
class Outcome:
    """How an accepted prompt ended: applied to its log row and to every daily row it counted in."""

    use: PromptUse
    row_id: int
    result: str  # one of RESULTS
    exec_ms: int | None = None
    cached_nodes: int | None = None
    loaded: frozenset[tuple[str, str]] = frozenset()  # model files ComfyUI resolved or read while it ran


def model_key(model_type: str, model_name: str) -> str:
    """A model's item name in daily rows and in /history: '<type>/<name>' (types never contain '/')."""
    return f"{model_type}/{model_name}"


@dataclass(frozen=True)
class Totals:
    """Summed daily rows of one item over a view (a window of days, one user or everyone)."""

    prompts: int = 0
    successes: int = 0
    failures: int = 0
    interrupted: int = 0
    rejected: int = 0
    exec_ms: int = 0
    first_ts: int | None = None
    last_ts: int | None = None

    def outcomes(self) -> dict:
        finished = self.successes + self.failures + self.interrupted
        return {
            "successes": self.successes,
            "failures": self.failures,
            "interrupted": self.interrupted,
            "rejected_count": self.rejected,
            "avg_ms": round(self.exec_ms / finished) if finished else None,
        }


NO_TOTALS = Totals()


@dataclass(frozen=True)
class View:
    """Which prompts a report counts: every day and every user, or a window of days and/or one user.

    Tiers never depend on the view: a model alice has not used this week may be bob's daily driver.
    """

    since_day: int | None = None
    user: str | None = None
    machine: str | None = None  # with a shared store: one machine's prompts (its id)

    @property
    def windowed(self) -> bool:
        return self.since_day is not None or self.user is not None or self.machine is not None


EVERYTHING = View()
"""Every day and every user: the view of the usage tables themselves."""


def storable(text: str) -> str:
    """`text` as SQLite can store it, always spelled the same way.

    Python keeps the bytes of a file name that is not valid UTF-8 as lone surrogates, which SQLite refuses;
    such a name is written with backslash escapes instead, so it is still one stable key and still shown.
    """
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


@lru_cache(maxsize=65_536)
def iso(ts: int | None) -> str | None:
    """Unix seconds as the ISO 8601 UTC text the API serves (None stays None).

    Memoised: a report formats tens of thousands of times, most of them the same few (every model first
    seen installed at one start-up shares one first_installed), and formatting dominated /models.
    """
    return None if ts is None else datetime.fromtimestamp(ts, timezone.utc).isoformat()


@dataclass
class InstalledPackage:
    """A custom-node pack as found on disk and in ComfyUI's loader state."""

    name: str
    node_types: list[str] = field(default_factory=list)
    disabled: bool = False
    import_failed: bool = False
    protected: bool = False  # ComfyUI-Manager and this extension: never suggested for removal
    refused: str | None = None  # why ComfyUI would not load it (a policy, the built-in manager); not a failure

    @property
    def frontend_only(self) -> bool:
        return not self.node_types and not self.disabled and not self.import_failed and not self.refused


def day(ts: int) -> str:
    """The UTC day of Unix seconds as `YYYY-MM-DD`: the one spelling of a day in reasons, series and exports."""
    return iso(ts - ts % DAY)[:10]


def normalise(name: str) -> str:
    """One storable spelling per relative model path: ComfyUI lists `sdxl\\foo` on Windows, `sdxl/foo` elsewhere."""
    return storable(name.replace("\\", "/"))
