"""The AI delivery readiness checklist: the boxes, grouped by category, each with why and how."""

from __future__ import annotations

from shipway.readiness.model import Category, Check

CICD = Category("model-cicd", "Model CI/CD")
GITOPS = Category("gitops", "GitOps for models")
GPU = Category("gpu-scheduling", "GPU scheduling")
ARTIFACTS = Category("artifacts", "Model artifacts")
GATES = Category("validation-gates", "Validation gates")
OBSERVABILITY = Category("observability", "Model observability")
BREAKERS = Category("circuit-breakers", "Automated circuit breakers")
ROLLOUTS = Category("rollouts", "Safe rollout strategies")
TENANCY = Category("tenancy", "Tenancy and security")
SELF_SERVICE = Category("self-service", "Self-service")

CATEGORIES: tuple[Category, ...] = (
    CICD, GITOPS, GPU, ARTIFACTS, GATES, OBSERVABILITY, BREAKERS, ROLLOUTS, TENANCY, SELF_SERVICE,
)

CHECKS: tuple[Check, ...] = (
    Check(
        "cicd-pipeline", CICD,
        "Is every model built and tested by CI, as code?",
        "A model trained on a laptop cannot be rebuilt, reviewed or audited; CI makes training a repeatable build.",
        "The model-repo template (`shipway new-model`) ships a CI pipeline that runs the repo's tests, then trains.",
    ),
    Check(
        "cicd-versioned-artifacts", CICD,
        "Is every model pushed as a versioned artifact?",
        "Rollback and audit need the exact bytes that served; a version tag on an immutable artifact names them.",
        "model.yaml names a version and an OCI artifact; CI pushes the model with `shipway model push`.",
    ),
    Check(
        "gitops-sync", GITOPS,
        "Are model deployments reconciled from Git by a GitOps controller?",
        "Git becomes the record of what runs where; drift in the cluster is reverted instead of accumulating.",
        "Argo CD with automated sync, self-heal and prune, and an ApplicationSet over the GitOps repo.",
    ),
    Check(
        "gitops-promotion", GITOPS,
        "Are models promoted environment by environment, by pull request?",
        "A reviewed pull request per environment is the approval trail and the rollback lever.",
        "Environments come from metadata.environments, one AppProject per team; CI runs `shipway promote`.",
    ),
    Check(
        "gpu-pools", GPU,
        "Do GPUs sit in dedicated, autoscaled, tainted node pools?",
        "Untainted GPU nodes fill with pods that need no GPU, and fixed-size pools either idle or starve.",
        "Blueprint nodePools with gpu, min/max sizes, the nvidia.com/gpu.present label and a NoSchedule taint.",
    ),
    Check(
        "gpu-device-stack", GPU,
        "Does an operator or device plugin expose GPUs to pods, with DCGM metrics?",
        "Without the device plugin nvidia.com/gpu is not schedulable; without DCGM, GPU spend is invisible.",
        "The NVIDIA GPU Operator or device plugin with DCGM exporter (fake-gpu-operator on kind).",
    ),
    Check(
        "gpu-sharing", GPU,
        "Are GPUs shared, by time-slicing or MIG, so small models do not hold whole cards?",
        "Most inference uses a fraction of a GPU; sharing multiplies what the same fleet can serve.",
        "gpuStack.sharing: time-slicing (replicas per GPU) or MIG profiles on A100/H100/H200 pools.",
    ),
    Check(
        "gpu-quotas", GPU,
        "Is each team's GPU use capped by a quota?",
        "One team's experiment must not take every GPU the serving path needs.",
        "A ResourceQuota with requests.nvidia.com/gpu in every team namespace, from teams[].quota.gpus.",
    ),
    Check(
        "artifacts-registry", ARTIFACTS,
        "Is there an OCI registry with storage sized for model artifacts?",
        "Models run to gigabytes per version; a registry sized for container images fills in weeks.",
        "zot in the cluster with registry.storageSize (or an external registry), serving images and models.",
    ),
    Check(
        "artifacts-large-blobs", ARTIFACTS,
        "Does the registry accept multi-gigabyte blobs and store identical ones once?",
        "Weights files exceed default proxy body limits, and retrained versions share most of their bytes.",
        "The gateway streams uploads to zot unbuffered, with timeouts sized to registry.maxBlobSize, and zot's "
        "dedupe; both on by default.",
    ),
    Check(
        "gates-statistical", GATES,
        "Must a candidate beat production with statistical confidence before it ships?",
        "A metric that is higher by chance ships a worse model; a confidence bound stops it in CI.",
        "`shipway gate` runs in CI before the push: a paired bootstrap bound on the metric difference, with slices.",
    ),
    Check(
        "gates-holdout", GATES,
        "Are the candidate and the production model scored on the same holdout?",
        "Comparing scores from different data measures the data, not the models.",
        "The template's evaluate step scores candidate and production on one fixed holdout file the gate reads.",
    ),
    Check(
        "observability-model-slos", OBSERVABILITY,
        "Are drift, accuracy, latency and errors measured and alerted on per model?",
        "A model degrades silently as its inputs drift; only its own signals show it.",
        "The sidecar exports per-version metrics; PrometheusRules alert on the blueprint's (or model's) SLOs.",
    ),
    Check(
        "observability-alert-routing", OBSERVABILITY,
        "Do model alerts reach a person?",
        "An alert that fires into no receiver is a log line nobody reads.",
        "observability.receivers: Slack, PagerDuty or webhook receivers in Alertmanager, URLs as secrets.",
    ),
    Check(
        "breakers-analysis", BREAKERS,
        "Does a failing canary roll back automatically, from analysis of its metrics?",
        "People notice a bad release in hours; analysis aborts it in minutes, before most traffic sees it.",
        "ClusterAnalysisTemplates on error rate, latency, drift and accuracy, querying Prometheus for Argo Rollouts.",
    ),
    Check(
        "rollouts-progressive", ROLLOUTS,
        "Do models roll out progressively, by canary or blue-green?",
        "All-at-once replacement exposes every user to an untested model at once.",
        "Argo Rollouts with serving.defaultStrategy and canarySteps; each model's rollout in model.yaml.",
    ),
    Check(
        "tenancy-namespaces", TENANCY,
        "Does each team get its own namespaces with quotas, limits and a default-deny network policy?",
        "Shared namespaces let one team's pods starve, reach or break another's.",
        "A namespace per team and environment with ResourceQuota, LimitRange and default-deny NetworkPolicies.",
    ),
    Check(
        "tenancy-rbac", TENANCY,
        "Are team permissions granted to identity groups through RBAC?",
        "Per-person grants drift and outlive the people; group bindings follow the identity provider.",
        "A namespaced Role per team bound to teams[].groups.",
    ),
    Check(
        "tenancy-secrets", TENANCY,
        "Are credentials kept as secrets, out of config files and pipelines?",
        "A token in a repository is a token for everyone who can read it, forever.",
        "The blueprint names Pulumi secret keys only; the template's CI reads tokens from CI secrets.",
    ),
    Check(
        "selfservice-scaffold", SELF_SERVICE,
        "Can a team start a model repo with the road already paved?",
        "Every team rebuilding CI, gating and deployment is why most organisations ship models rarely.",
        "`shipway new-model` bakes model.yaml, code, tests, a Makefile and the CI pipeline.",
    ),
    Check(
        "selfservice-docs", SELF_SERVICE,
        "Is the road to production documented where the team works?",
        "A paved road nobody can find is not used.",
        "The baked repo's README walks from commit to production, step by step, with the make targets.",
    ),
)

CHECKS_BY_ID: dict[str, Check] = {check.id: check for check in CHECKS}
