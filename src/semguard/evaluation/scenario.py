"""Scenario files: what ``semguard run`` measures, as TOML, validated with one-line errors.

A scenario names the sources, codecs and baselines, the channels and SNR grid, the cipher and
eavesdropper, the energy model, the operating constraints, seeds and output.  Every key is
checked before any work starts; an error names the file, the key and what was expected::

    my.toml: [channels] snr_db: expected a list of finite numbers (dB), got 'ten'

The bundled scenarios live in ``semguard/evaluation/scenarios/`` (``default`` is what
``semguard run`` runs with no argument); ``[quick]`` in a scenario says what ``--quick`` shrinks.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

from semguard.evaluation.energy import DEVICE_CLASSES, EnergyModel
from semguard.evaluation.run import RunConfig

# the defences a robustness cell can put in front of an image codec's receiver (fitted per cell)
IMAGE_DEFENSES = ("blanking", "blur", "interference-lmmse", "keyed-spread")  # semguard.defenses.deploy

__all__ = ["Scenario", "SecrecyConfig", "RobustnessConfig", "Constraint", "ScenarioError", "load_scenario", "list_scenarios",
           "parse_scenario", "bundled_path"]

SECTIONS = ("scenario", "images", "channels", "task", "text", "secrecy", "robustness", "energy", "constraints",
            "quick")


class ScenarioError(ValueError):
    """A scenario file that cannot be used; the message names the file and the key."""


@dataclass(frozen=True)
class SecrecyConfig:
    """Bob against Eve through a cipher: Eve listens on her own ``eve_channel`` at ``eve_snr_offset_db``
    relative to Bob, holding no key."""

    cipher: str = "mixing"
    eve_channel: str = "rayleigh"
    eve_snr_offset_db: float = 0.0
    codec: str | None = None  # default: the scenario's image codec


@dataclass(frozen=True)
class RobustnessConfig:
    """Image fidelity under ``attacks`` (attack registry names, channel surface) at each ``psr_db``,
    at one ``snr_db`` over ``channel``, on the first ``images`` photos; ``robust_psnr`` of a codec is
    its PSNR under the strongest of them at ``reference_psr_db``."""

    attacks: tuple[str, ...] = ("gaussian", "pgd")
    psr_db: tuple[float, ...] = (-20.0, -10.0)
    reference_psr_db: float = -10.0
    snr_db: float = 10.0
    channel: str = "awgn"
    steps: int = 10
    images: int = 2
    codecs: tuple[str, ...] = ()  # default: the scenario's image codec
    defenses: tuple[str, ...] = ()  # defence registry names: each codec also behind each, attacked through it
    text_attacks: tuple[str, ...] = ()  # attacks on the scenario's text codec (DeepSC), same PSRs
    text_sentences: int = 64


@dataclass(frozen=True)
class Constraint:
    """``metric`` of ``system`` (default: every configuration) must be ``>=`` or ``<=`` ``bound`` at
    ``snr_db`` (None: every SNR of the grid) over ``channel`` (None: every channel)."""

    metric: str
    op: str
    bound: float
    snr_db: float | None = None
    channel: str | None = None

    def holds(self, value: float) -> bool:
        return value >= self.bound if self.op == ">=" else value <= self.bound

    def describe(self) -> str:
        where = [f"{self.snr_db:g} dB" if self.snr_db is not None else "", self.channel or ""]
        at = ", ".join(w for w in where if w)
        return f"{self.metric} {self.op} {self.bound:g}" + (f" ({at})" if at else "")


@dataclass(frozen=True)
class Scenario:
    """A validated scenario: the main job's :class:`RunConfig` plus what the envelope needs."""

    name: str
    description: str
    run: RunConfig
    secrecy: SecrecyConfig | None = None
    robustness: RobustnessConfig | None = None
    energy: EnergyModel = field(default_factory=EnergyModel)
    constraints: tuple[Constraint, ...] = ()
    quick_overrides: dict[str, Any] = field(default_factory=dict)
    source: str = "<memory>"

    def quick(self) -> Scenario:
        """The scenario with its ``[quick]`` overrides applied (``--quick``)."""
        if not self.quick_overrides:
            return self
        over = dict(self.quick_overrides)
        rob = {k.removeprefix("robustness_"): over.pop(k) for k in list(over) if k.startswith("robustness_")}
        robustness = replace(self.robustness, **rob) if self.robustness is not None and rob else self.robustness
        return replace(self, run=replace(self.run, **over), robustness=robustness, quick_overrides={})

    def to_json(self) -> dict[str, Any]:
        from dataclasses import asdict

        return {"name": self.name, "description": self.description, "source": self.source,
                "run": asdict(self.run), "secrecy": asdict(self.secrecy) if self.secrecy else None,
                "robustness": asdict(self.robustness) if self.robustness else None,
                "energy": asdict(self.energy), "constraints": [asdict(c) for c in self.constraints]}


def bundled_path(name: str) -> Path:
    return Path(str(resources.files("semguard.evaluation") / "scenarios" / f"{name}.toml"))


def list_scenarios() -> dict[str, str]:
    """The bundled scenarios: ``{name: description}``."""
    root = Path(str(resources.files("semguard.evaluation") / "scenarios"))
    return {p.stem: load_scenario(p).description for p in sorted(root.glob("*.toml"))}


def load_scenario(spec: str | Path) -> Scenario:
    """A bundled scenario by name (``"default"``) or a TOML file by path."""
    path = Path(spec)
    if not path.suffix and not path.exists():
        path = bundled_path(str(spec))
        if not path.is_file():
            raise ScenarioError(f"no bundled scenario named {spec!r}; bundled: {', '.join(list_scenarios())} "
                                "(or give a .toml file)")
    if path.is_dir():
        raise ScenarioError(f"{path}: is a folder, expected a scenario .toml file")
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ScenarioError(f"{path}: no such scenario file") from None
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise ScenarioError(f"{path}: not a valid TOML file ({e})") from None
    return parse_scenario(data, source=str(path))


class _Reader:
    """Typed, named access to one section of the parsed TOML."""

    def __init__(self, src: str, section: str, table: Any) -> None:
        self.src, self.section = src, section
        if not isinstance(table, dict):
            self.fail("", "a table", table)
        self.table = dict(table)

    def fail(self, key: str, expected: str, got: Any) -> None:
        where = f"[{self.section}] {key}".rstrip() if key else f"[{self.section}]"
        raise ScenarioError(f"{self.src}: {where}: expected {expected}, got {got!r}")

    def take(self, key: str, kind: str, default: Any = None, *, choices: list[str] | None = None) -> Any:
        if key not in self.table:
            return default
        v = self.table.pop(key)
        ok = {"str": isinstance(v, str), "bool": isinstance(v, bool),
              "int": isinstance(v, int) and not isinstance(v, bool),
              "number": isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v),
              "strs": isinstance(v, list) and all(isinstance(x, str) for x in v),
              "numbers": isinstance(v, list) and all(isinstance(x, int | float) and not isinstance(x, bool)
                                                     and math.isfinite(x) for x in v)}[kind]
        if not ok:
            names = {"str": "a string", "bool": "true or false", "int": "an integer", "number": "a finite number",
                     "strs": "a list of strings", "numbers": "a list of finite numbers"}
            self.fail(key, names[kind], v)
        if choices is not None:
            for x in v if isinstance(v, list) else [v]:
                if x not in choices:
                    self.fail(key, f"one of {', '.join(choices)}", x)
        return v

    def done(self) -> None:
        if self.table:
            self.fail(sorted(self.table)[0], "no such key (unknown key)", self.table[sorted(self.table)[0]])


def _registry_names(family: str) -> list[str]:
    from semguard.registry import available

    return list(available(family))


def _zoo_names() -> list[str]:
    from semguard.codecs.zoo import ZOO

    return list(ZOO)


def parse_scenario(data: dict[str, Any], *, source: str = "<memory>") -> Scenario:
    """Validate a parsed TOML document into a :class:`Scenario` (see the bundled ``default.toml``)."""
    for key in data:
        if key not in SECTIONS:
            raise ScenarioError(f"{source}: [{key}]: expected one of the sections {', '.join(SECTIONS)}")
    base = RunConfig()
    head = _Reader(source, "scenario", data.get("scenario", {}))
    name = head.take("name", "str", Path(source).stem)
    description = head.take("description", "str", "")
    seed = head.take("seed", "int", base.seed)
    head.done()

    zoo, channels = _zoo_names(), _registry_names("channel")
    img = _Reader(source, "images", data.get("images", {}))
    image_codec = img.take("codec", "str", base.image_codec, choices=[*zoo, ""])   # "": no image part
    refs = tuple(img.take("reference_codecs", "strs", list(base.reference_codecs) if image_codec else [],
                          choices=zoo))
    if refs and not image_codec:
        img.fail("reference_codecs", "none without an image codec (codec = \"\")", list(refs))
    baselines = tuple(img.take("baselines", "strs", list(base.baselines), choices=_registry_names("baseline")))
    link_baseline = img.take("link_baseline", "str", base.link_baseline)
    limit = tuple(img.take("limit_baselines", "strs", list(base.limit_baselines)))
    for key, names in (("link_baseline", [link_baseline]), ("limit_baselines", list(limit))):
        for b in names:
            if b not in baselines:
                img.fail(key, f"a baseline listed in baselines ({', '.join(baselines)})", b)
    count = img.take("count", "int", None)
    if count is not None and count < 1:
        img.fail("count", "an integer >= 1 (photos)", count)
    draws = img.take("fading_draws", "int", base.fading_realizations)
    if draws < 1:
        img.fail("fading_draws", "an integer >= 1", draws)
    img.done()

    ch = _Reader(source, "channels", data.get("channels", {}))
    names = tuple(ch.take("names", "strs", list(base.channels), choices=channels))
    snrs = ch.take("snr_db", "numbers", list(base.snr_db))
    if not names:
        ch.fail("names", "at least one channel", names)
    if not snrs or any(not -50 <= s <= 80 for s in snrs) or len(set(snrs)) != len(snrs):
        ch.fail("snr_db", "a non-empty list of distinct SNRs in -50..80 dB", snrs)
    ch.done()

    task = _Reader(source, "task", data.get("task", {}))
    task_codec = task.take("codec", "str", base.task_codec, choices=[*zoo, ""])
    task_images = task.take("images", "int", base.task_images)
    if not 1 <= task_images <= 2000:
        task.fail("images", "an integer in 1..2000 (the shipped Fashion-MNIST test subset)", task_images)
    task.done()

    text = _Reader(source, "text", data.get("text", {}))
    text_codec = text.take("codec", "str", base.text_codec or "", choices=["deepsc", ""])
    sentences = text.take("sentences", "int", base.text_sentences)
    if not 1 <= sentences <= 1000:
        text.fail("sentences", "an integer in 1..1000 (the shipped WordNet test sentences)", sentences)
    text.done()

    run = RunConfig(image_codec=image_codec, reference_codecs=refs, task_codec=task_codec or "",
                    baselines=baselines, link_baseline=link_baseline, limit_baselines=limit, channels=names,
                    snr_db=tuple(float(s) for s in snrs), images=count, fading_realizations=draws,
                    task_images=task_images, text_codec=text_codec or None, text_sentences=sentences, seed=seed)

    secrecy = None
    if "secrecy" in data:
        sec = _Reader(source, "secrecy", data["secrecy"])
        secrecy = SecrecyConfig(cipher=sec.take("cipher", "str", "mixing", choices=_registry_names("cipher")),
                                eve_channel=sec.take("eve_channel", "str", "rayleigh", choices=channels),
                                eve_snr_offset_db=float(sec.take("eve_snr_offset_db", "number", 0.0)),
                                codec=sec.take("codec", "str", None, choices=zoo))
        if not (secrecy.codec or image_codec):
            sec.fail("codec", "an image codec (here or in [images] codec)", secrecy.codec)
        sec.done()

    robustness = None
    if "robustness" in data:
        rob = _Reader(source, "robustness", data["robustness"])
        d_r = RobustnessConfig()
        attacks = tuple(rob.take("attacks", "strs", list(d_r.attacks), choices=_registry_names("attack")))
        psrs = tuple(float(x) for x in rob.take("psr_db", "numbers", list(d_r.psr_db)))
        if not attacks or not psrs or any(not -60 <= x <= 20 for x in psrs):
            rob.fail("psr_db", "a non-empty list of PSRs in -60..20 dB and at least one attack", list(psrs))
        ref = float(rob.take("reference_psr_db", "number", psrs[-1] if d_r.reference_psr_db not in psrs
                             else d_r.reference_psr_db))
        if ref not in psrs:
            rob.fail("reference_psr_db", f"one of psr_db {list(psrs)}", ref)
        robustness = RobustnessConfig(
            attacks=attacks, psr_db=psrs, reference_psr_db=ref,
            snr_db=float(rob.take("snr_db", "number", d_r.snr_db)),
            channel=rob.take("channel", "str", d_r.channel, choices=channels),
            steps=rob.take("steps", "int", d_r.steps), images=rob.take("images", "int", d_r.images),
            codecs=tuple(rob.take("codecs", "strs", [image_codec] if image_codec else [], choices=zoo)),
            defenses=tuple(rob.take("defenses", "strs", [], choices=sorted(IMAGE_DEFENSES))),
            text_attacks=tuple(rob.take("text_attacks", "strs", [], choices=_registry_names("attack"))),
            text_sentences=rob.take("text_sentences", "int", d_r.text_sentences))
        if robustness.steps < 1 or robustness.images < 1 or not robustness.codecs:
            rob.fail("steps", "steps >= 1, images >= 1 and an image codec", (robustness.steps, robustness.images))
        if robustness.defenses and robustness.channel != "awgn":
            rob.fail("defenses", "no defences unless channel = \"awgn\" (they are fitted to AWGN blocks)",
                     list(robustness.defenses))
        if robustness.text_attacks and not text_codec:
            rob.fail("text_attacks", "none without a text codec ([text] codec)", list(robustness.text_attacks))
        if not 1 <= robustness.text_sentences <= 1000:
            rob.fail("text_sentences", "an integer in 1..1000", robustness.text_sentences)
        rob.done()

    en = _Reader(source, "energy", data.get("energy", {}))
    d = EnergyModel()
    energy = EnergyModel(device_class=en.take("device_class", "str", d.device_class, choices=sorted(DEVICE_CLASSES)),
                         tx_power_w=float(en.take("tx_power_w", "number", d.tx_power_w)),
                         symbol_rate_hz=float(en.take("symbol_rate_hz", "number", d.symbol_rate_hz)))
    if energy.tx_power_w <= 0 or energy.symbol_rate_hz <= 0:
        en.fail("tx_power_w", "positive tx_power_w (W) and symbol_rate_hz (Hz)",
                (energy.tx_power_w, energy.symbol_rate_hz))
    en.done()

    constraints = []
    raw = data.get("constraints", {})
    con = _Reader(source, "constraints", raw)
    for key in list(con.table):
        spec = con.table.pop(key)
        sub = _Reader(source, f"constraints.{key}", spec)
        op = ">=" if "min" in sub.table else "<="
        if ("min" in sub.table) == ("max" in sub.table):
            sub.fail("min", "exactly one of min or max", spec)
        bound = sub.take("min" if op == ">=" else "max", "number")
        constraints.append(Constraint(metric=sub.take("metric", "str", key), op=op, bound=float(bound),
                                      snr_db=sub.take("snr_db", "number", None),
                                      channel=sub.take("channel", "str", None, choices=list(names))))
        sub.done()

    quick: dict[str, Any] = {}
    if "quick" in data:
        q = _Reader(source, "quick", data["quick"])
        mapping = {"snr_db": ("snr_db", "numbers"), "images": ("images", "int"),
                   "fading_draws": ("fading_realizations", "int"), "task_images": ("task_images", "int"),
                   "text_sentences": ("text_sentences", "int"), "reference_codecs": ("reference_codecs", "strs"),
                   "robustness_steps": ("robustness_steps", "int"), "robustness_images": ("robustness_images", "int"),
                   "robustness_text_sentences": ("robustness_text_sentences", "int")}
        for key, (field_name, kind) in mapping.items():
            v = q.take(key, kind, None, choices=list(refs) if key == "reference_codecs" else None)
            if v is not None:
                if kind == "int" and v < 1:
                    q.fail(key, "an integer >= 1", v)
                if key.startswith("robustness_") and robustness is None:
                    q.fail(key, "no robustness override without a [robustness] section", v)
                quick[field_name] = (tuple(float(s) for s in v) if kind == "numbers" else
                                     tuple(v) if kind == "strs" else v)
        q.done()
    return Scenario(name=name, description=description, run=run, secrecy=secrecy, robustness=robustness, energy=energy,
                    constraints=tuple(constraints), quick_overrides=quick, source=source)
