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
