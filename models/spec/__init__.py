"""The model spec: one YAML file per financial model, validated by pydantic, with unknown keys
rejected and every error naming the file and the field path. The schema lives in ``base``,
``data``, ``gate``, ``monitoring`` and ``fields``; ``model`` adds the cross-field rules of
``checks``; ``cron`` checks schedules and ``loading`` reads files. Every section and field is
described in docs/spec-reference.md, generated from this schema by scripts/spec_reference.py.
"""

from models.errors import SpecError
from models.features import FeatureBuilderSpec, FeaturesFrom
from models.metrics import CLASSIFICATION_TASKS, METRICS, ROW_COMPARABLE, MetricInfo, TaskType
from models.spec.base import SAFE_NAME, OneOf, Strict, check_metric, safe_name
from models.spec.checks import CHECKS, RESERVED_COLUMNS, spec_problems
from models.spec.cron import check_cron
from models.spec.data import (
    ESTIMATORS,
    CandidateSpec,
    ColumnSpec,
    DType,
    FileSource,
    OutOfTimeSpec,
    RDatasetsSource,
    Role,
    Scalar,
    Source,
    Split,
    SqlSource,
    StratifiedHoldoutSplit,
    TableSpec,
    TargetSpec,
    TimeIndexSpec,
    TimePoint,
    WalkForwardSplit,
    WindowSpec,
)
from models.spec.explain import DriversSpec, ReasonsSpec
from models.spec.governance import GovernanceSpec
from models.spec.gate import (
    BaselineRule,
    ChampionRule,
    GateRule,
    GateSpec,
    McsRule,
    MonotonicRule,
    ThresholdRule,
    _ComparisonRule,
)
from models.spec.loading import find_spec, list_specs, load_spec_file, parse_spec, scan_specs
from models.spec.model import ModelSpec
from models.spec.monitoring import (
    EVIDENTLY_STATTESTS,
    ColumnDriftSpec,
    DriftSpec,
    FairnessSpec,
    LeakageSpec,
    ScheduleSpec,
)
from models.spec.segments import SegmentSpec
from models.spec.rating import RatingGrade, RatingScaleSpec, TrafficLightPolicy, ValidationSpec
from models.spec.stored import stored_spec
from models.spec.var import VarSpec

__all__ = [
    "BaselineRule", "CHECKS", "CLASSIFICATION_TASKS", "CandidateSpec", "ChampionRule", "ColumnDriftSpec", "ColumnSpec",
    "DType", "DriftSpec", "DriversSpec", "ESTIMATORS", "EVIDENTLY_STATTESTS", "FairnessSpec", "FeatureBuilderSpec", "FeaturesFrom",
    "FileSource", "GateRule", "GateSpec", "GovernanceSpec",
    "LeakageSpec", "METRICS", "McsRule", "MetricInfo", "ModelSpec", "MonotonicRule", "OneOf", "OutOfTimeSpec", "RDatasetsSource", "ReasonsSpec",
    "RESERVED_COLUMNS", "ROW_COMPARABLE", "RatingGrade", "RatingScaleSpec", "Role", "SAFE_NAME", "Scalar", "ScheduleSpec", "SegmentSpec", "Source", "SpecError",
    "Split", "SqlSource", "StratifiedHoldoutSplit", "Strict", "TableSpec", "TargetSpec", "TaskType",
    "ThresholdRule", "TimeIndexSpec", "TimePoint", "TrafficLightPolicy", "ValidationSpec", "VarSpec", "WalkForwardSplit", "WindowSpec", "_ComparisonRule", "check_cron",
    "check_metric", "find_spec", "list_specs",
    "load_spec_file", "parse_spec", "safe_name", "scan_specs", "spec_problems", "stored_spec",
]
