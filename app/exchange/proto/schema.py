"""Message classes for MEXC's spot push data, built at import from mexc_spot_push.proto.

The .proto file is the single source of truth: this module reads the small subset of proto3
it uses (messages; string, int32, int64, bool and message fields; repeated; optional; oneof)
into a FileDescriptorProto, registers it in a private DescriptorPool (so it never clashes
with another copy of MEXC's definitions in the process) and makes the classes with the
`protobuf` runtime. No protoc, no generated code.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

PROTO_FILE = Path(__file__).with_name("mexc_spot_push.proto")

_F = descriptor_pb2.FieldDescriptorProto
_SCALARS = {
    "string": _F.TYPE_STRING,
    "int32": _F.TYPE_INT32,
    "int64": _F.TYPE_INT64,
    "bool": _F.TYPE_BOOL,
}
_TOKEN = re.compile(r'[A-Za-z_][A-Za-z0-9_.]*|\d+|"[^"]*"|[{}=;]')
_FIELD_LABELS = {"repeated", "optional"}


class ProtoSchemaError(ValueError):
    """The .proto file uses something this reader does not know."""


def _tokens(text: str) -> list[str]:
    text = re.sub(r"//[^\n]*", "", text)
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return _TOKEN.findall(text)


def parse_proto(
    text: str, name: str = "mexc_spot_push.proto"
) -> descriptor_pb2.FileDescriptorProto:
    """The FileDescriptorProto of a proto3 file in the supported subset."""
    file = descriptor_pb2.FileDescriptorProto(name=name, syntax="proto3")
    tokens = _tokens(text)
    i = 0
    synthetic: list[tuple[Any, str]] = []

    def expect(value: str) -> None:
        nonlocal i
        if tokens[i] != value:
            raise ProtoSchemaError(f"expected {value!r}, found {tokens[i]!r}")
        i += 1

    def field(message: Any, label: str | None, oneof: int | None) -> None:
        nonlocal i
        type_name, field_name = tokens[i], tokens[i + 1]
        i += 2
        expect("=")
        number = int(tokens[i])
        i += 1
        expect(";")
        f = message.field.add(name=field_name, number=number, json_name=field_name)
        f.label = _F.LABEL_REPEATED if label == "repeated" else _F.LABEL_OPTIONAL
        if type_name in _SCALARS:
            f.type = _SCALARS[type_name]
        else:
            f.type = _F.TYPE_MESSAGE
            f.type_name = "." + type_name
        if oneof is not None:
            f.oneof_index = oneof
        if label == "optional":
            f.proto3_optional = True
            synthetic.append((f, "_" + field_name))

    while i < len(tokens):
        if tokens[i] == "syntax":
            i += 1
            expect("=")
            if tokens[i] != '"proto3"':
                raise ProtoSchemaError(f"only proto3 is supported, not {tokens[i]}")
            i += 1
            expect(";")
        elif tokens[i] == "message":
            message = file.message_type.add(name=tokens[i + 1])
            synthetic = []
            i += 2
            expect("{")
            while tokens[i] != "}":
                if tokens[i] == "oneof":
                    index = len(message.oneof_decl)
                    message.oneof_decl.add(name=tokens[i + 1])
                    i += 2
                    expect("{")
                    while tokens[i] != "}":
                        field(message, None, index)
                    i += 1
                elif tokens[i] in _FIELD_LABELS:
                    label = tokens[i]
                    i += 1
                    field(message, label, None)
                else:
                    field(message, None, None)
            i += 1
            for f, oneof_name in synthetic:  # proto3 optional: synthetic oneofs come last
                f.oneof_index = len(message.oneof_decl)
                message.oneof_decl.add(name=oneof_name)
        else:
            raise ProtoSchemaError(f"unexpected {tokens[i]!r} in {name}")
    return file


def _build() -> tuple[descriptor_pool.DescriptorPool, descriptor_pb2.FileDescriptorProto]:
    file = parse_proto(PROTO_FILE.read_text(encoding="utf-8"))
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return pool, file


POOL, FILE_DESCRIPTOR = _build()


def message_class(name: str) -> Any:
    """The message class of `name` (e.g. "PushDataV3ApiWrapper")."""
    return message_factory.GetMessageClass(POOL.FindMessageTypeByName(name))


PushDataV3ApiWrapper = message_class("PushDataV3ApiWrapper")
PublicMiniTickerV3Api = message_class("PublicMiniTickerV3Api")
PublicMiniTickersV3Api = message_class("PublicMiniTickersV3Api")
PublicAggreBookTickerV3Api = message_class("PublicAggreBookTickerV3Api")
PublicAggreDealsV3Api = message_class("PublicAggreDealsV3Api")
PublicAggreDealsV3ApiItem = message_class("PublicAggreDealsV3ApiItem")
PublicAggreDepthsV3Api = message_class("PublicAggreDepthsV3Api")
PublicLimitDepthsV3Api = message_class("PublicLimitDepthsV3Api")
PublicSpotKlineV3Api = message_class("PublicSpotKlineV3Api")
