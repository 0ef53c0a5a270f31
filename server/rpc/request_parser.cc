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

// The first string field of `bytes` (a `message` without its schema
// applied) that is not valid UTF-8, searched through nested messages; its
// path, e.g. "operations[3].add_user.user_id", starts with `prefix`. OK if
// none is found.
absl::Status FindInvalidUtf8(const std::string& bytes,
                             const google::protobuf::Descriptor* message,
                             const std::string& prefix, int depth) {
  UnknownFieldSet fields;
  // Protobuf's own nesting limit; deeper input failed for other reasons.
  constexpr int kMaxDepth = 100;
  if (depth > kMaxDepth || !fields.ParseFromString(bytes)) {
    return absl::OkStatus();
  }
  absl::flat_hash_map<int, int> seen;  // Field number -> occurrences.
  for (int i = 0; i < fields.field_count(); ++i) {
    const UnknownField& field = fields.field(i);
    const FieldDescriptor* known = message->FindFieldByNumber(field.number());
    const int index = seen[field.number()]++;
    if (known == nullptr ||
        field.type() != UnknownField::TYPE_LENGTH_DELIMITED) {
      continue;
    }
    const std::string name =
        absl::StrCat(prefix, known->name(),
                     known->is_repeated() ? absl::StrCat("[", index, "]") : "");
    absl::Status status;
    if (known->type() == FieldDescriptor::TYPE_STRING) {
      status = ValidateUtf8(name, field.length_delimited());
    } else if (known->type() == FieldDescriptor::TYPE_MESSAGE) {
      status = FindInvalidUtf8(field.length_delimited(), known->message_type(),
                               absl::StrCat(name, "."), depth + 1);
    }
    if (!status.ok()) return status;
  }
  return absl::OkStatus();
}

// Says why `request` failed to parse: the string field with invalid UTF-8,
// found by reading the bytes without a schema; else that it is malformed.
absl::Status DiagnoseParseFailure(const grpc::ByteBuffer& bytes,
                                  const google::protobuf::Message& request) {
  const google::protobuf::Descriptor* descriptor = request.GetDescriptor();
  if (absl::Status status =
          FindInvalidUtf8(Flatten(bytes), descriptor, "", /*depth=*/0);
      !status.ok()) {
    return status;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("request is not a well-formed ", descriptor->full_name()));
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
