"""The IAM the EKS platform hands its controllers: each may change only what it owns.

Policies are asked, through a small IAM evaluator (iam_eval.py), whether a call an attacker-in-the-controller
would make is allowed, next to the calls the controller needs.
"""

from __future__ import annotations

from iam_eval import Call, allowed
from layer_support import Synthesised

from shipway.render import eks as render_eks

NODE_ROLE = "arn:aws:iam::123456789012:role/shipway-prod-karpenter-node"
QUEUE = "arn:aws:sqs:eu-west-1:123456789012:shipway-prod-karpenter"
INSTANCE = "arn:aws:ec2:eu-west-1:123456789012:instance/i-0123456789abcdef0"
OWN_TAGS = {"kubernetes.io/cluster/shipway-prod": "owned", "karpenter.sh/nodepool": "a10g"}


def _request_tags(tags: dict[str, str]) -> dict[str, object]:
    return {**{f"aws:RequestTag/{key}": value for key, value in tags.items()}, "aws:TagKeys": list(tags)}


def _resource_tags(tags: dict[str, str]) -> dict[str, object]:
    return {f"aws:ResourceTag/{key}": value for key, value in tags.items()}


def test_karpenter_cannot_claim_and_end_instances_it_did_not_launch(eks_prod: Synthesised) -> None:
    """Karpenter's reference controller policy (aws/karpenter-provider-aws,
    website/content/en/preview/getting-started/getting-started-with-karpenter/cloudformation.yaml,
    KarpenterControllerPolicy): RunInstances/CreateFleet/CreateLaunchTemplate on the created resources need the
    request tags kubernetes.io/cluster/<name>=owned and karpenter.sh/nodepool; CreateTags needs ec2:CreateAction
    in {RunInstances, CreateFleet, CreateLaunchTemplate} with those tags, or, on an instance already so tagged,
    only the karpenter.sh/nodeclaim and Name keys; TerminateInstances/DeleteLaunchTemplate need both resource
    tags. Without that, the role could tag any instance of the account as its own and terminate it."""
    policy = render_eks.karpenter_controller_policy(eks_prod.blueprint, NODE_ROLE, QUEUE)
    # The escalation: tag someone else's running instance as this cluster's, then end it.
    assert not allowed(policy, Call("ec2:CreateTags", INSTANCE, _request_tags(OWN_TAGS)))
    assert not allowed(policy, Call("ec2:TerminateInstances", INSTANCE, {}))
    assert not allowed(policy, Call("ec2:TerminateInstances", INSTANCE,
                                    _resource_tags({"kubernetes.io/cluster/shipway-prod": "owned"})))
    # Launching untagged (or tagged for another cluster) instances is refused as well.
    assert not allowed(policy, Call("ec2:RunInstances", INSTANCE, {}))
    assert not allowed(policy, Call("ec2:RunInstances", INSTANCE, _request_tags(
        {"kubernetes.io/cluster/other": "owned", "karpenter.sh/nodepool": "a10g"})))
    # On its own instances it may set only the NodeClaim and Name tags, not re-home them.
    own = _resource_tags(OWN_TAGS)
    assert allowed(policy, Call("ec2:CreateTags", INSTANCE, {**own, **_request_tags({"Name": "n", "karpenter.sh/nodeclaim": "c"})}))
    assert not allowed(policy, Call("ec2:CreateTags", INSTANCE, {**own, **_request_tags({"karpenter.sh/nodepool": "h100"})}))
    # What Karpenter needs still works.
    assert allowed(policy, Call("ec2:RunInstances", INSTANCE, _request_tags(OWN_TAGS)))
    assert allowed(policy, Call("ec2:RunInstances", "arn:aws:ec2:eu-west-1:123456789012:subnet/subnet-1", {}))
    assert allowed(policy, Call("ec2:CreateTags", INSTANCE, {**_request_tags(OWN_TAGS),
                                                             "ec2:CreateAction": "RunInstances"}))
    assert allowed(policy, Call("ec2:TerminateInstances", INSTANCE, own))
    # No EC2 or IAM write is allowed on every resource without a condition.
    for statement in policy["Statement"]:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        writes = [a for a in actions if a.startswith(("ec2:", "iam:")) and not a.split(":")[1].startswith(
            ("Describe", "Get", "List"))]
        if writes and statement["Resource"] == "*":
            assert "Condition" in statement, statement["Sid"]


def test_karpenter_may_tag_only_instance_profiles_it_owns(eks_prod: Synthesised) -> None:
    """Same reference policy (AllowScopedInstanceProfileTagActions): TagInstanceProfile needs the profile to
    carry the cluster's owned tag already, or tagging any profile `owned` would open DeleteInstanceProfile on it."""
    policy = render_eks.karpenter_controller_policy(eks_prod.blueprint, NODE_ROLE, QUEUE)
    profile = "arn:aws:iam::123456789012:instance-profile/someone-elses"
    claim = _request_tags({"kubernetes.io/cluster/shipway-prod": "owned"})
    assert not allowed(policy, Call("iam:TagInstanceProfile", profile, claim))
    assert allowed(policy, Call("iam:TagInstanceProfile", profile,
                                {**claim, **_resource_tags({"kubernetes.io/cluster/shipway-prod": "owned"})}))
    assert not allowed(policy, Call("iam:DeleteInstanceProfile", profile, {}))


# --- Route53 for cert-manager (DNS-01) and external-dns ------------------------------------------------------

ZONE = "arn:aws:route53:::hostedzone/Z0123456789ABCDEFGHIJ"
OTHER_ZONE = "arn:aws:route53:::hostedzone/ZOTHERZONE"
ASSOCIATION = "aws:eks/podIdentityAssociation:PodIdentityAssociation"


def _records(names: list[str], types: list[str]) -> dict[str, object]:
    return {"route53:ChangeResourceRecordSetsNormalizedRecordNames": names,
            "route53:ChangeResourceRecordSetsRecordTypes": types}


def _identity(eks: Synthesised, namespace: str) -> tuple[dict, dict]:
    """The Pod Identity association for a namespace, and the policy of the role it hands out."""
    import json

    [association] = [a for a in eks.of_type(ASSOCIATION) if a.inputs["namespace"] == namespace]
    [role] = [r for r in eks.of_type("aws:iam/role:Role") if r.urn in association.dependencies]
    [policy] = [p for p in eks.of_type("aws:iam/rolePolicy:RolePolicy") if p.name == role.name]
    return association.inputs, json.loads(policy.inputs["policy"])


def test_cert_manager_may_answer_dns01_challenges_in_the_zone_and_nothing_else(eks_prod: Synthesised) -> None:
    """Review 1.5: eks-prod asks for DNS-01 through Route53, but cert-manager had no AWS identity, so no
    certificate could issue. It now gets a Pod Identity role on its chart's service account (cert-manager/
    cert-manager) that may write only _acme-challenge TXT records in gateway.hostedZoneIds."""
    association, policy = _identity(eks_prod, "cert-manager")
    assert association["serviceAccount"] == "cert-manager" and association["clusterName"] == "shipway-prod"
    challenge = _records(["_acme-challenge.abc.fraud.prod.ml.acme.example"], ["TXT"])
    assert allowed(policy, Call("route53:ChangeResourceRecordSets", ZONE, challenge))
    assert allowed(policy, Call("route53:GetChange", "arn:aws:route53:::change/C123", {}))
    assert allowed(policy, Call("route53:ListHostedZonesByName", "*", {}))
    assert not allowed(policy, Call("route53:ChangeResourceRecordSets", OTHER_ZONE, challenge))
    assert not allowed(policy, Call("route53:ChangeResourceRecordSets", ZONE,
                                    _records(["www.ml.acme.example"], ["A"])))
    assert not allowed(policy, Call("route53:ChangeResourceRecordSets", ZONE,
                                    _records(["_acme-challenge.x.ml.acme.example"], ["TXT", "A"])))


def test_external_dns_may_publish_only_under_the_gateway_domain_in_the_zone(eks_prod: Synthesised) -> None:
    """Review 1.5: external-dns (provider aws) had no identity; its role now changes records under
    gateway.domain in the blueprint's zones only, and the release filters to those zones and names a region."""
    association, policy = _identity(eks_prod, "external-dns")
    assert association["serviceAccount"] == "external-dns"
    inside = _records(["model.fraud.prod.ml.acme.example", "a-model.fraud.prod.ml.acme.example"], ["A", "TXT"])
    assert allowed(policy, Call("route53:ChangeResourceRecordSets", ZONE, inside))
    assert allowed(policy, Call("route53:ListResourceRecordSets", ZONE, {}))
    assert allowed(policy, Call("route53:ListHostedZones", "*", {}))
    assert not allowed(policy, Call("route53:ChangeResourceRecordSets", OTHER_ZONE, inside))
    assert not allowed(policy, Call("route53:ChangeResourceRecordSets", ZONE, _records(["acme.example"], ["A"])))
    values = eks_prod.releases["external-dns"]["values"]
    assert values["extraArgs"] == {"zone-id-filter": ["Z0123456789ABCDEFGHIJ"]}
    assert {"name": "AWS_DEFAULT_REGION", "value": "eu-west-1"} in values["env"]


def test_dns_identities_wait_for_the_pod_identity_agent(eks_prod: Synthesised) -> None:
    """Pods get an association's credentials only through the eks-pod-identity-agent add-on."""
    [agent] = [a for a in eks_prod.of_type("aws:eks/addon:Addon") if a.inputs["addonName"] == "eks-pod-identity-agent"]
    for namespace in ("cert-manager", "external-dns"):
        [association] = [a for a in eks_prod.of_type(ASSOCIATION) if a.inputs["namespace"] == namespace]
        assert agent.urn in association.dependencies


def test_dns01_on_aws_without_a_hosted_zone_is_refused(tmp_path) -> None:
    """Without a zone id there is nothing to scope the roles to: loading says so at the field and how to fix it."""
    import pytest

    from layer_support import REPO
    from shipway.errors import SpecError
    from shipway.spec import load_blueprint

    text = (REPO / "blueprints" / "eks-prod.yaml").read_text()
    path = tmp_path / "eks.yaml"
    path.write_text(text.replace("  hostedZoneIds: [Z0123456789ABCDEFGHIJ]\n", ""))
    with pytest.raises(SpecError) as raised:
        load_blueprint(path)
    message = str(raised.value)
    assert "gateway.hostedZoneIds" in message and "cert-manager and external-dns" in message
    assert "aws route53 list-hosted-zones-by-name" in message


def test_no_route53_identity_without_a_route53_user() -> None:
    from shipway.spec.blueprint import Blueprint

    built = Blueprint.model_validate({
        "metadata": {"name": "x"}, "cluster": {"kind": "eks", "region": "us-east-1"}, "gitops": {"enabled": False},
        "nodePools": [{"name": "system", "instanceType": "m6i.large"}], "teams": [{"name": "t"}]})
    assert render_eks.dns_identities(built) == []
