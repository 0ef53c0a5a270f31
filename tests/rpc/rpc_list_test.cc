// The RPC list (proto/jambalancer/v1/rpc_list.h) against the proto's own
// descriptors: a method or batch operation added to the proto but not to the
// list, or listed out of order, fails here.

#include "jambalancer/v1/rpc_list.h"

#include <cctype>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "google/protobuf/descriptor.h"
#include "gtest/gtest.h"
#include "jambalancer/v1/jam_balancer.pb.h"

namespace jambalancer {
namespace {

using ::google::protobuf::Descriptor;
using ::google::protobuf::OneofDescriptor;
using ::google::protobuf::ServiceDescriptor;
using ::testing::ElementsAreArray;

struct Entry {
  std::string method;
  std::string field;
};

const ServiceDescriptor* Service() {
  return v1::BatchRequest::descriptor()->file()->FindServiceByName(
      "JamBalancerService");
}

std::vector<Entry> AllRpcs() {
  return {
#define JAM_BALANCER_ENTRY(Method, field) {#Method, #field},
      JAM_BALANCER_RPCS(JAM_BALANCER_ENTRY)
#undef JAM_BALANCER_ENTRY
  };
}

std::vector<Entry> ClientStreamingRpcs() {
  return {
#define JAM_BALANCER_ENTRY(Method, field) {#Method, #field},
      JAM_BALANCER_CLIENT_STREAMING_RPCS(JAM_BALANCER_ENTRY)
#undef JAM_BALANCER_ENTRY
  };
}

std::vector<Entry> BatchRpcs() {
  return {
#define JAM_BALANCER_ENTRY(Method, field) {#Method, #field},
      JAM_BALANCER_BATCH_RPCS(JAM_BALANCER_ENTRY)
#undef JAM_BALANCER_ENTRY
  };
}

// "CurrentJam" -> "current_jam".
std::string SnakeCase(const std::string& camel) {
  std::string snake;
  for (char c : camel) {
    if (std::isupper(static_cast<unsigned char>(c)) && !snake.empty()) {
      snake.push_back('_');
    }
    snake.push_back(
        static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  }
  return snake;
}

std::vector<std::string> OneofFields(const Descriptor* message) {
  EXPECT_EQ(message->oneof_decl_count(), 1) << message->full_name();
  const OneofDescriptor* oneof = message->oneof_decl(0);
  std::vector<std::string> fields;
  for (int i = 0; i < oneof->field_count(); ++i) {
    fields.push_back(oneof->field(i)->name());
  }
  return fields;
}

TEST(RpcListTest, ListsEveryMethodOfTheServiceInOrder) {
  const ServiceDescriptor* service = Service();
  ASSERT_NE(service, nullptr);
  std::vector<std::string> methods;
  for (int i = 0; i < service->method_count(); ++i) {
    methods.push_back(service->method(i)->name());
  }
  std::vector<std::string> listed;
  for (const Entry& entry : AllRpcs()) listed.push_back(entry.method);
  for (const Entry& entry : ClientStreamingRpcs()) {
    listed.push_back(entry.method);
  }
  EXPECT_THAT(listed, ElementsAreArray(methods));
  ASSERT_EQ(kRpcCount, methods.size());
  for (size_t i = 0; i < kRpcCount; ++i) {
    EXPECT_EQ(kRpcNames[i], methods[i]);
  }
  EXPECT_EQ(RpcName(Rpc::kBatch), "Batch");
}

TEST(RpcListTest, EveryMethodIsUnaryWithItsOwnRequestAndResponse) {
  const ServiceDescriptor* service = Service();
  ASSERT_NE(service, nullptr);
  for (const Entry& entry : AllRpcs()) {
    const auto* method = service->FindMethodByName(entry.method);
    ASSERT_NE(method, nullptr) << entry.method;
    EXPECT_FALSE(method->client_streaming()) << entry.method;
    EXPECT_FALSE(method->server_streaming()) << entry.method;
    EXPECT_EQ(method->input_type()->name(), entry.method + "Request");
    EXPECT_EQ(method->output_type()->name(), entry.method + "Response");
    EXPECT_EQ(entry.field, SnakeCase(entry.method));
  }
}

TEST(RpcListTest, StreamingMethodsStreamFromTheClientOnly) {
  const ServiceDescriptor* service = Service();
  ASSERT_NE(service, nullptr);
  for (const Entry& entry : ClientStreamingRpcs()) {
    const auto* method = service->FindMethodByName(entry.method);
    ASSERT_NE(method, nullptr) << entry.method;
    EXPECT_TRUE(method->client_streaming()) << entry.method;
    EXPECT_FALSE(method->server_streaming()) << entry.method;
    EXPECT_EQ(method->input_type()->name(), entry.method + "Request");
    EXPECT_EQ(method->output_type()->name(), entry.method + "Response");
    EXPECT_EQ(kRpcTypes[static_cast<size_t>(Rpc::kSync)], "client_stream");
  }
  EXPECT_EQ(kRpcTypes[static_cast<size_t>(Rpc::kBatch)], "unary");
}

TEST(RpcListTest, BatchRpcsAreTheBatchOneofsInOrder) {
  std::vector<std::string> listed;
  for (const Entry& entry : BatchRpcs()) listed.push_back(entry.field);
  EXPECT_THAT(listed,
              ElementsAreArray(OneofFields(v1::BatchOperation::descriptor())));
  EXPECT_THAT(listed,
              ElementsAreArray(OneofFields(v1::BatchResult::descriptor())));
  // Each operation carries its RPC's request, each result its response.
  for (const Entry& entry : BatchRpcs()) {
    EXPECT_EQ(v1::BatchOperation::descriptor()
                  ->FindFieldByName(entry.field)
                  ->message_type()
                  ->name(),
              entry.method + "Request");
    EXPECT_EQ(v1::BatchResult::descriptor()
                  ->FindFieldByName(entry.field)
                  ->message_type()
                  ->name(),
              entry.method + "Response");
  }
}

}  // namespace
}  // namespace jambalancer
