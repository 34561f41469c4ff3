"""The subset of the CSI v1 protocol the node plugin speaks, built at import with protobuf's descriptor API.

Names and field numbers are those of csi.proto in container-storage-interface/spec (tag v1.12.0);
tests/unit/artifacts/test_csi_messages.py states each one against that file. Only the Identity and Node
services are declared, and of Node only what an ephemeral, unstaged volume needs; the kubelet may send
fields this subset leaves out (or a newer spec adds): protobuf keeps them as unknown fields, and they parse.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, wrappers_pb2

PACKAGE = "csi.v1"
FILE_NAME = "shipway/csi/v1/csi_subset.proto"
IDENTITY = f"{PACKAGE}.Identity"
NODE = f"{PACKAGE}.Node"

_Field = descriptor_pb2.FieldDescriptorProto
_SCALARS = {"string": _Field.TYPE_STRING, "bool": _Field.TYPE_BOOL, "int64": _Field.TYPE_INT64}

# message name -> its fields: (name, number, type). A type is a scalar, "map" (map<string, string>), "enum:X" or
# "message:X" with X a name under csi.v1 (or a full name starting with "."), and "repeated " makes it a list.
# A fourth item names the oneof the field belongs to. Nested messages are written "Outer.Inner".
MESSAGES: dict[str, list[tuple[str, ...]]] = {
    "GetPluginInfoRequest": [],
    "GetPluginInfoResponse": [("name", "1", "string"), ("vendor_version", "2", "string"), ("manifest", "3", "map")],
    "GetPluginCapabilitiesRequest": [],
    "GetPluginCapabilitiesResponse": [("capabilities", "1", "repeated message:PluginCapability")],
    "PluginCapability": [("service", "1", "message:PluginCapability.Service", "type")],
    "PluginCapability.Service": [("type", "1", "enum:PluginCapability.Service.Type")],
    "ProbeRequest": [],
    "ProbeResponse": [("ready", "1", "message:.google.protobuf.BoolValue")],
    "NodePublishVolumeRequest": [
        ("volume_id", "1", "string"), ("publish_context", "2", "map"), ("staging_target_path", "3", "string"),
        ("target_path", "4", "string"), ("volume_capability", "5", "message:VolumeCapability"),
        ("readonly", "6", "bool"), ("secrets", "7", "map"), ("volume_context", "8", "map"),
    ],
    "NodePublishVolumeResponse": [],
    "NodeUnpublishVolumeRequest": [("volume_id", "1", "string"), ("target_path", "2", "string")],
    "NodeUnpublishVolumeResponse": [],
    "NodeGetCapabilitiesRequest": [],
    "NodeGetCapabilitiesResponse": [("capabilities", "1", "repeated message:NodeServiceCapability")],
    "NodeServiceCapability": [("rpc", "1", "message:NodeServiceCapability.RPC", "type")],
    "NodeServiceCapability.RPC": [("type", "1", "enum:NodeServiceCapability.RPC.Type")],
    "NodeGetInfoRequest": [],
    "NodeGetInfoResponse": [
        ("node_id", "1", "string"), ("max_volumes_per_node", "2", "int64"),
        ("accessible_topology", "3", "message:Topology"),
    ],
    "Topology": [("segments", "1", "map")],
    "VolumeCapability": [
        ("block", "1", "message:VolumeCapability.BlockVolume", "access_type"),
        ("mount", "2", "message:VolumeCapability.MountVolume", "access_type"),
        ("access_mode", "3", "message:VolumeCapability.AccessMode"),
    ],
    "VolumeCapability.BlockVolume": [],
    "VolumeCapability.MountVolume": [
        ("fs_type", "1", "string"), ("mount_flags", "2", "repeated string"), ("volume_mount_group", "3", "string"),
    ],
    "VolumeCapability.AccessMode": [("mode", "1", "enum:VolumeCapability.AccessMode.Mode")],
}

ENUMS: dict[str, list[tuple[str, int]]] = {
    "PluginCapability.Service.Type": [
        ("UNKNOWN", 0), ("CONTROLLER_SERVICE", 1), ("VOLUME_ACCESSIBILITY_CONSTRAINTS", 2),
        ("GROUP_CONTROLLER_SERVICE", 3), ("SNAPSHOT_METADATA_SERVICE", 4),
    ],
    "NodeServiceCapability.RPC.Type": [
        ("UNKNOWN", 0), ("STAGE_UNSTAGE_VOLUME", 1), ("GET_VOLUME_STATS", 2), ("EXPAND_VOLUME", 3),
        ("VOLUME_CONDITION", 4), ("SINGLE_NODE_MULTI_WRITER", 5), ("VOLUME_MOUNT_GROUP", 6),
    ],
    "VolumeCapability.AccessMode.Mode": [
        ("UNKNOWN", 0), ("SINGLE_NODE_WRITER", 1), ("SINGLE_NODE_READER_ONLY", 2), ("MULTI_NODE_READER_ONLY", 3),
        ("MULTI_NODE_SINGLE_WRITER", 4), ("MULTI_NODE_MULTI_WRITER", 5), ("SINGLE_NODE_SINGLE_WRITER", 6),
        ("SINGLE_NODE_MULTI_WRITER", 7),
    ],
}

# service -> method -> (request, response). Anything else the kubelet calls is answered UNIMPLEMENTED by gRPC.
SERVICES: dict[str, dict[str, tuple[str, str]]] = {
    "Identity": {
        "GetPluginInfo": ("GetPluginInfoRequest", "GetPluginInfoResponse"),
        "GetPluginCapabilities": ("GetPluginCapabilitiesRequest", "GetPluginCapabilitiesResponse"),
        "Probe": ("ProbeRequest", "ProbeResponse"),
    },
    "Node": {
        "NodePublishVolume": ("NodePublishVolumeRequest", "NodePublishVolumeResponse"),
        "NodeUnpublishVolume": ("NodeUnpublishVolumeRequest", "NodeUnpublishVolumeResponse"),
        "NodeGetCapabilities": ("NodeGetCapabilitiesRequest", "NodeGetCapabilitiesResponse"),
        "NodeGetInfo": ("NodeGetInfoRequest", "NodeGetInfoResponse"),
    },
}


def _full(name: str) -> str:
    return name if name.startswith(".") else f".{PACKAGE}.{name}"


def _map_entry(message: descriptor_pb2.DescriptorProto, field_name: str) -> str:
    """Declare the nested `XxxEntry` a map<string, string> field is on the wire; its full name."""
    entry = message.nested_type.add(name="".join(part.title() for part in field_name.split("_")) + "Entry")
    entry.options.map_entry = True
    for name, number in (("key", 1), ("value", 2)):
        entry.field.add(name=name, number=number, type=_Field.TYPE_STRING, label=_Field.LABEL_OPTIONAL)
    return entry.name


def _add_fields(message: descriptor_pb2.DescriptorProto, path: str) -> None:
    oneofs: list[str] = []
    for name, number, kind, *oneof in MESSAGES[path]:
        field = message.field.add(name=name, number=int(number), label=_Field.LABEL_OPTIONAL)
        if kind.startswith("repeated "):
            field.label, kind = _Field.LABEL_REPEATED, kind.removeprefix("repeated ")
        if kind == "map":
            field.label, field.type = _Field.LABEL_REPEATED, _Field.TYPE_MESSAGE
            field.type_name = f"{_full(path)}.{_map_entry(message, name)}"
        elif kind.startswith("message:"):
            field.type, field.type_name = _Field.TYPE_MESSAGE, _full(kind.removeprefix("message:"))
        elif kind.startswith("enum:"):
            field.type, field.type_name = _Field.TYPE_ENUM, _full(kind.removeprefix("enum:"))
        else:
            field.type = _SCALARS[kind]
        if oneof:
            if oneof[0] not in oneofs:
                oneofs.append(oneof[0])
                message.oneof_decl.add(name=oneof[0])
            field.oneof_index = oneofs.index(oneof[0])


def file_descriptor() -> descriptor_pb2.FileDescriptorProto:
    """The subset as one .proto file's descriptor, nested messages and enums in their parents."""
    proto = descriptor_pb2.FileDescriptorProto(name=FILE_NAME, package=PACKAGE, syntax="proto3")
    proto.dependency.append(wrappers_pb2.DESCRIPTOR.name)
    built: dict[str, descriptor_pb2.DescriptorProto] = {}
    for path in MESSAGES:  # parents come before their nested messages
        parent, _, name = path.rpartition(".")
        built[path] = (built[parent].nested_type if parent else proto.message_type).add(name=name)
        _add_fields(built[path], path)
    for path, values in ENUMS.items():
        parent, _, name = path.rpartition(".")
        enum = built[parent].enum_type.add(name=name)
        for value_name, number in values:
            enum.value.add(name=value_name, number=number)
    for service_name, methods in SERVICES.items():
        service = proto.service.add(name=service_name)
        for method, (request, response) in methods.items():
            service.method.add(name=method, input_type=_full(request), output_type=_full(response))
    return proto


def _pool() -> descriptor_pool.DescriptorPool:
    """A pool of our own, so nothing else in the process that registers csi.v1 can clash with it."""
    pool = descriptor_pool.DescriptorPool()
    pool.Add(descriptor_pb2.FileDescriptorProto.FromString(wrappers_pb2.DESCRIPTOR.serialized_pb))
    pool.Add(file_descriptor())
    return pool


POOL = _pool()


def message_class(name: str) -> Any:
    """The generated message class of a csi.v1 message (e.g. "NodePublishVolumeRequest")."""
    return message_factory.GetMessageClass(POOL.FindMessageTypeByName(f"{PACKAGE}.{name}"))


def method_paths() -> dict[str, tuple[Any, Any]]:
    """Every method's gRPC path (/csi.v1.Node/NodePublishVolume) with its request and response classes."""
    paths = {}
    for service_name in SERVICES:
        service = POOL.FindServiceByName(f"{PACKAGE}.{service_name}")
        for method in service.methods:
            paths[f"/{service.full_name}/{method.name}"] = (
                message_factory.GetMessageClass(method.input_type), message_factory.GetMessageClass(method.output_type))
    return paths


GetPluginInfoResponse = message_class("GetPluginInfoResponse")
GetPluginCapabilitiesResponse = message_class("GetPluginCapabilitiesResponse")
ProbeResponse = message_class("ProbeResponse")
NodePublishVolumeRequest = message_class("NodePublishVolumeRequest")
NodePublishVolumeResponse = message_class("NodePublishVolumeResponse")
NodeUnpublishVolumeRequest = message_class("NodeUnpublishVolumeRequest")
NodeUnpublishVolumeResponse = message_class("NodeUnpublishVolumeResponse")
NodeGetCapabilitiesResponse = message_class("NodeGetCapabilitiesResponse")
NodeGetInfoResponse = message_class("NodeGetInfoResponse")
VolumeCapability = message_class("VolumeCapability")
