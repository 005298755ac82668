"""Every tag and artifact name ftpipe writes to the MLflow registry, defined once.

The register stage, the Registry class (stages/registry/client.py), the pure gate and the `ftpipe promote |
rollback | history` commands all read and write these names through the constants below, so a rename is
one edit. No imports: the pure modules can use it.
"""

from __future__ import annotations

# --- lifecycle of a model version (tag `ftpipe.status`): pending -> verified -> complete, or broken
STATUS = "ftpipe.status"
PENDING, VERIFIED, COMPLETE, BROKEN = "pending", "verified", "complete", "broken"
USABLE_STATUSES = (None, COMPLETE, VERIFIED)  # may become champion (None: registered outside ftpipe)
BROKEN_REASON = "ftpipe.broken_reason"
VERIFY_AGREEMENT = "ftpipe.verify_agreement"
MODEL_VERSION = "ftpipe.model_version"  # on the registration run: the version it created

# --- identity and lineage (on the run and the version)
MODEL_HASH = "ftpipe.model_hash"
MANIFEST = "ftpipe.manifest"  # JSON {"format": 1, "files": {path: sha256}}: every file of the logged model
LABELS = "labels"  # JSON list, id order
TASK = "ftpipe.task"  # multi_label for a model of label sets (label.task); absent: one label per text
LABELS_SHA = "labels.sha256"
PARAMS_SHA = "params.sha256"
GIT_COMMIT = "git.commit"
GIT_DIRTY = "git.dirty"
GIT_DIRTY_FILES = "git.dirty_files"
DVC_PREFIX = "dvc."  # dvc.<path> = md5 of that output in dvc.lock
LIB_PREFIX = "lib."  # lib.torch, lib.transformers, ...
TRACKING_URI = "tracking_uri"
# what the version trained on and the data profile: the tag holds the run artifact's path; no tag = no record
TRAINED_ON = "ftpipe.trained_on"
TRAINED_ON_ROWS = "ftpipe.trained_on.rows"  # "train N, validation M; G groups"
PROFILE = "ftpipe.profile"
# the verify rows as the version predicted them at registration (stages/registry/smoke.py): the tag holds
# the run artifact's path; `ftpipe serve` reproduces them before it serves the version
SMOKE = "ftpipe.smoke"

# --- artifacts of the registration run
TRAINED_ON_ARTIFACT = "trained_on.json.gz"
PROFILE_ARTIFACT = "profile.json"
SMOKE_ARTIFACT = "smoke.json"
MODEL_CARD_ARTIFACT = "model_card.md"
GATE_ARTIFACT = "gate.json"  # the gate's decision (also the version tag `ftpipe.gate`)
REPORT_PAGE_ARTIFACT = "report.html"  # the run's page (stages/reports/run_page.py), linked from the card
MODEL_ARTIFACT = "model"
REPORTS_DIR = "reports"

# --- the gate (on the run and the version)
GATE_JSON = "ftpipe.gate"  # the whole decision as JSON
GATE_DECISION = "gate.decision"  # promote | reject
GATE_POLICY = "gate.policy"
GATE_CHAMPION_BEFORE = "gate.champion_before"
GATE_PREFIX = "gate."


def gate_outcome(check: str) -> str:
    """`gate.<check>.outcome`: pass | fail | warn | skip."""
    return f"{GATE_PREFIX}{check}.outcome"


def gate_reason(check: str) -> str:
    """`gate.<check>.reason`: one sentence with the figures."""
    return f"{GATE_PREFIX}{check}.reason"


# --- the registered model
CHAMPION = "champion"
CHALLENGER = "challenger"
HISTORY_PREFIX = "ftpipe.history."  # ftpipe.history.000001, ...: one JSON event per change of champion
