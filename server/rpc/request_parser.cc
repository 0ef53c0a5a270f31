#include "server/rpc/request_parser.h"

#include <grpcpp/support/proto_buffer_reader.h>

#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/unknown_field_set.h"
#include "server/rpc/id_validation.h"

namespace jambalancer {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::UnknownField;
using google::protobuf::UnknownFieldSet;

std::string Flatten(const grpc::ByteBuffer& bytes) {
  std::vector<grpc::Slice> slices;
  std::string flat;
  if (!bytes.Dump(&slices).ok()) return flat;
  for (const grpc::Slice& slice : slices) {
    flat.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
  }
  return flat;
}

// Says why `request` failed to parse: the string field with invalid UTF-8,
// found by reading the bytes without a schema; else that it is malformed.
absl::Status DiagnoseParseFailure(const grpc::ByteBuffer& bytes,
                                  const google::protobuf::Message& request) {
  const google::protobuf::Descriptor* descriptor = request.GetDescriptor();
  const absl::Status malformed = absl::InvalidArgumentError(
      absl::StrCat("request is not a well-formed ", descriptor->full_name()));
  UnknownFieldSet fields;
  if (!fields.ParseFromString(Flatten(bytes))) return malformed;
  absl::flat_hash_map<int, int> seen;  // Field number -> occurrences.
  for (int i = 0; i < fields.field_count(); ++i) {
    const UnknownField& field = fields.field(i);
    const FieldDescriptor* known =
        descriptor->FindFieldByNumber(field.number());
    const int index = seen[field.number()]++;
    if (known == nullptr || known->type() != FieldDescriptor::TYPE_STRING ||
        field.type() != UnknownField::TYPE_LENGTH_DELIMITED) {
      continue;
    }
    const std::string name = known->is_repeated()
                                 ? absl::StrCat(known->name(), "[", index, "]")
                                 : known->name();
    if (absl::Status status = ValidateUtf8(name, field.length_delimited());
        !status.ok()) {
      return status;
    }
  }
  return malformed;
}

}  // namespace

absl::Status ParseRequest(const grpc::ByteBuffer& bytes,
                          google::protobuf::Message* request) {
  grpc::ByteBuffer shared(bytes);  // Shares the slices; the reader needs one.
  grpc::ProtoBufferReader reader(&shared);
  if (request->ParseFromZeroCopyStream(&reader)) return absl::OkStatus();
  return DiagnoseParseFailure(bytes, *request);
}

}  // namespace jambalancer
