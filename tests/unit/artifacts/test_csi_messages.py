"""The CSI v1 messages and methods the node plugin builds in code, stated against the spec.

Every name, field number, type and method path below is read from csi.proto of
container-storage-interface/spec at tag v1.12.0 (commit e6fc13ea4d529db12e211ef79c924ee3186c39d5):
`service Identity` (line 52), `service Node` (line 144), `message GetPluginInfoResponse` (175),
`message VolumeCapability` (450), `message NodePublishVolumeRequest` (1469), `message NodeGetInfoResponse` (1688).
A plugin whose numbers differ would read the kubelet's target path or secrets from the wrong field.
"""

from __future__ import annotations

import pytest

from shipway.artifacts.csi import DRIVER, messages

# message -> field -> (number, type as csi.proto writes it)
SPEC_FIELDS = {
    "GetPluginInfoResponse": {"name": (1, "string"), "vendor_version": (2, "string"),
                              "manifest": (3, "map<string, string>")},
    "GetPluginCapabilitiesResponse": {"capabilities": (1, "repeated PluginCapability")},
    "PluginCapability": {"service": (1, "Service")},
    "PluginCapability.Service": {"type": (1, "Type")},
    "ProbeResponse": {"ready": (1, ".google.protobuf.BoolValue")},
    "NodePublishVolumeRequest": {
        "volume_id": (1, "string"), "publish_context": (2, "map<string, string>"),
        "staging_target_path": (3, "string"), "target_path": (4, "string"),
        "volume_capability": (5, "VolumeCapability"), "readonly": (6, "bool"),
        "secrets": (7, "map<string, string>"), "volume_context": (8, "map<string, string>"),
    },
    "NodeUnpublishVolumeRequest": {"volume_id": (1, "string"), "target_path": (2, "string")},
    "NodeGetCapabilitiesResponse": {"capabilities": (1, "repeated NodeServiceCapability")},
    "NodeServiceCapability": {"rpc": (1, "RPC")},
    "NodeServiceCapability.RPC": {"type": (1, "Type")},
    "NodeGetInfoResponse": {"node_id": (1, "string"), "max_volumes_per_node": (2, "int64"),
                            "accessible_topology": (3, "Topology")},
    "Topology": {"segments": (1, "map<string, string>")},
    "VolumeCapability": {"block": (1, "BlockVolume"), "mount": (2, "MountVolume"), "access_mode": (3, "AccessMode")},
    "VolumeCapability.MountVolume": {"fs_type": (1, "string"), "mount_flags": (2, "repeated string"),
                                     "volume_mount_group": (3, "string")},
    "VolumeCapability.AccessMode": {"mode": (1, "Mode")},
}
SPEC_METHODS = {
    "/csi.v1.Identity/GetPluginInfo", "/csi.v1.Identity/GetPluginCapabilities", "/csi.v1.Identity/Probe",
    "/csi.v1.Node/NodePublishVolume", "/csi.v1.Node/NodeUnpublishVolume", "/csi.v1.Node/NodeGetCapabilities",
    "/csi.v1.Node/NodeGetInfo",
}
SPEC_ENUMS = {
    "VolumeCapability.AccessMode.Mode": {"SINGLE_NODE_WRITER": 1, "SINGLE_NODE_READER_ONLY": 2,
                                         "MULTI_NODE_READER_ONLY": 3},
    "NodeServiceCapability.RPC.Type": {"STAGE_UNSTAGE_VOLUME": 1, "VOLUME_MOUNT_GROUP": 6},
}


def _spelt(field) -> str:  # noqa: ANN001 - a protobuf FieldDescriptor
    """A field's type as csi.proto spells it."""
    if field.message_type is not None and field.message_type.GetOptions().map_entry:
        return "map<string, string>"
    names = {field.TYPE_STRING: "string", field.TYPE_BOOL: "bool", field.TYPE_INT64: "int64"}
    if field.message_type is not None:
        name = field.message_type.full_name
        kind = f".{name}" if name.startswith("google.") else field.message_type.name
    elif field.enum_type is not None:
        kind = field.enum_type.name
    else:
        kind = names[field.type]
    repeated = field.is_repeated if hasattr(field, "is_repeated") else field.label == field.LABEL_REPEATED
    return f"repeated {kind}" if repeated else kind


@pytest.mark.parametrize("message", sorted(SPEC_FIELDS))
def test_each_message_has_the_specs_field_numbers_and_types(message: str) -> None:
    descriptor = messages.POOL.FindMessageTypeByName(f"csi.v1.{message}")
    built = {field.name: (field.number, _spelt(field)) for field in descriptor.fields}
    assert built == SPEC_FIELDS[message]


def test_the_methods_are_the_specs_paths_and_nothing_else_is_served() -> None:
    assert set(messages.method_paths()) == SPEC_METHODS


def test_enum_values_are_the_specs() -> None:
    for enum, values in SPEC_ENUMS.items():
        descriptor = messages.POOL.FindEnumTypeByName(f"csi.v1.{enum}")
        assert {name: descriptor.values_by_name[name].number for name in values} == values


def test_oneofs_group_what_the_spec_groups() -> None:
    capability = messages.POOL.FindMessageTypeByName("csi.v1.VolumeCapability")
    assert [field.name for field in capability.oneofs_by_name["access_type"].fields] == ["block", "mount"]


def test_a_request_with_fields_this_subset_does_not_know_parses_and_keeps_what_it_knows() -> None:
    """A newer kubelet may send fields a later spec adds; the plugin must still read the ones it needs."""
    request = messages.NodePublishVolumeRequest(volume_id="v", target_path="/var/lib/kubelet/pods/u/x",
                                                readonly=True, secrets={".dockerconfigjson": "{}"},
                                                volume_context={"artifact": "oci://r.example/a@sha256:" + "0" * 64})
    request.volume_capability.mount.mount_flags.append("noatime")
    request.volume_capability.access_mode.mode = 1
    # Field 99 (varint 7) and field 100 (bytes "later") of NodePublishVolumeRequest, and field 9 inside
    # volume_capability: wire tags are (number << 3) | wire type.
    unknown_inside = b"\x48\x07"
    raw = request.SerializeToString() + b"\x98\x06\x07" + b"\xa2\x06\x05later"
    raw += b"\x2a" + bytes([len(unknown_inside)]) + unknown_inside
    parsed = messages.NodePublishVolumeRequest.FromString(raw)
    assert parsed.target_path == "/var/lib/kubelet/pods/u/x" and parsed.readonly
    assert dict(parsed.secrets) == {".dockerconfigjson": "{}"}
    assert list(parsed.volume_capability.mount.mount_flags) == ["noatime"]
    assert parsed.volume_capability.access_mode.mode == 1


def test_the_driver_name_is_the_contracts() -> None:
    # A DNS subdomain, as the CSIDriver object's name must be; the render uses the same constant.
    assert DRIVER == "models.shipway.dev"
