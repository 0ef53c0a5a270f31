#include "server/metrics/pool_metrics.h"

#include <cstdint>
#include <limits>
#include <utility>

#include "server/metrics/metric_families.h"

namespace jambalancer {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

// The collection's single-value series, in the order /metrics lists them.
struct CollectionValue {
  const char* name;
  const char* help;
  MetricType type;
  double (*read)(const CollectionSnapshot&);
};

constexpr CollectionValue kCollectionValues[] = {
    {"jam_balancer_jams", "Jams with at least one member or reserved seat.",
     MetricType::Gauge,
     [](const CollectionSnapshot& s) { return double(s.jam_count); }},
    {"jam_balancer_users", "Members of all jams.", MetricType::Gauge,
     [](const CollectionSnapshot& s) { return double(s.user_count); }},
    {"jam_balancer_full_jams", "Jams with max_users members or more.",
     MetricType::Gauge,
     [](const CollectionSnapshot& s) { return double(s.full_jam_count); }},
    {"jam_balancer_overfilled_jams",
     "Jams with more than max_users members (stored by Refresh, which is "
     "presence truth).",
     MetricType::Gauge,
     [](const CollectionSnapshot& s) {
       return double(s.jams_by_members[s.max_users + 1]);
     }},
    {"jam_balancer_reservations", "Live seat reservations.", MetricType::Gauge,
     [](const CollectionSnapshot& s) { return double(s.reservation_count); }},
    {"jam_balancer_max_users", "Capacity of every jam (--max_users).",
     MetricType::Gauge,
     [](const CollectionSnapshot& s) { return double(s.max_users); }},
    {"jam_balancer_jams_created_total",
     "Jams created by AddUser, Refresh or a recorded fresh jam.",
     MetricType::Counter,
     [](const CollectionSnapshot& s) { return double(s.jams_created); }},
    {"jam_balancer_users_turned_away_total",
     "AddUser calls answered added=false because the jam was full.",
     MetricType::Counter,
     [](const CollectionSnapshot& s) { return double(s.users_turned_away); }},
    {"jam_balancer_overfilled_refreshes_total",
     "Refresh calls that stored more than max_users members.",
     MetricType::Counter,
     [](const CollectionSnapshot& s) {
       return double(s.overfilled_refreshes);
     }},
    {"jam_balancer_reservations_made_total",
     "Seats reserved by CurrentJam with a user id.", MetricType::Counter,
     [](const CollectionSnapshot& s) { return double(s.reservations_made); }},
    {"jam_balancer_reservations_expired_total",
     "Reservations that lapsed without the user joining.", MetricType::Counter,
     [](const CollectionSnapshot& s) {
       return double(s.reservations_expired);
     }},
};

MetricFamily Family(const char* name, const char* help, MetricType type) {
  return MetricFamily{name, help, type, {}};
}

ClientMetric& AddSeries(MetricFamily& family, const PoolReading& pool) {
  ClientMetric& metric = family.metric.emplace_back();
  metric.label = pool.labels;
  return metric;
}

// Jam sizes: buckets le=0..max_users; overfilled jams only in +Inf.
void FillJamSizes(const CollectionSnapshot& snapshot, ClientMetric& metric) {
  uint64_t cumulative = 0;
  for (uint32_t n = 0; n <= snapshot.max_users; ++n) {
    cumulative += snapshot.jams_by_members[n];
    metric.histogram.bucket.push_back({cumulative, static_cast<double>(n)});
  }
  metric.histogram.bucket.push_back(
      {snapshot.jam_count, std::numeric_limits<double>::infinity()});
  metric.histogram.sample_count = snapshot.jam_count;
  metric.histogram.sample_sum = static_cast<double>(snapshot.user_count);
}

using Sessions = PoolReading::Sessions;

// The sessions' series, in the order /metrics lists them.
struct SessionValue {
  const char* name;
  const char* help;
  MetricType type;
  uint64_t Sessions::*field;
};

constexpr SessionValue kSessionValues[] = {
    {"jam_balancer_sessions", "Front ends' sessions held.", MetricType::Gauge,
     &Sessions::live},
    {"jam_balancer_sessions_expired_total",
     "Front-end sessions whose lease ran out.", MetricType::Counter,
     &Sessions::expired},
    {"jam_balancer_users_removed_by_expiry_total",
     "Members removed because their front end's lease ran out.",
     MetricType::Counter, &Sessions::members_removed_by_expiry},
    {"jam_balancer_reservations_removed_by_expiry_total",
     "Reservations removed because their front end's lease ran out.",
     MetricType::Counter, &Sessions::reservations_removed_by_expiry},
};

}  // namespace

std::vector<MetricFamily> PoolFamilies(absl::Span<const PoolReading> pools) {
  std::vector<MetricFamily> families;
  for (const CollectionValue& value : kCollectionValues) {
    MetricFamily family = Family(value.name, value.help, value.type);
    for (const PoolReading& pool : pools) {
      if (!pool.collection.has_value()) continue;
      ClientMetric& metric = AddSeries(family, pool);
      const double reading = value.read(*pool.collection);
      if (value.type == MetricType::Counter) {
        metric.counter.value = reading;
      } else {
        metric.gauge.value = reading;
      }
    }
    if (!family.metric.empty()) families.push_back(std::move(family));
  }
  MetricFamily sizes = Family("jam_balancer_jam_members",
                              "Distribution of jams by number of members.",
                              MetricType::Histogram);
  for (const PoolReading& pool : pools) {
    if (pool.collection.has_value()) {
      FillJamSizes(*pool.collection, AddSeries(sizes, pool));
    }
  }
  if (!sizes.metric.empty()) families.push_back(std::move(sizes));

  for (const SessionValue& value : kSessionValues) {
    MetricFamily family = Family(value.name, value.help, value.type);
    for (const PoolReading& pool : pools) {
      if (!pool.sessions.has_value()) continue;
      ClientMetric& metric = AddSeries(family, pool);
      const auto reading = static_cast<double>((*pool.sessions).*value.field);
      if (value.type == MetricType::Counter) {
        metric.counter.value = reading;
      } else {
        metric.gauge.value = reading;
      }
    }
    if (!family.metric.empty()) families.push_back(std::move(family));
  }

  MetricFamily depth =
      Family("jam_balancer_strand_queue_depth",
             "Operations waiting for the strand.", MetricType::Gauge);
  MetricFamily wait =
      Family("jam_balancer_strand_wait_seconds",
             "Time operations waited in the strand's queue before running.",
             MetricType::Histogram);
  MetricFamily run =
      Family("jam_balancer_strand_run_seconds",
             "Time operations ran on the strand.", MetricType::Histogram);
  MetricFamily longest =
      Family("jam_balancer_strand_longest_step_seconds",
             "The longest any operation or step has run on the strand since "
             "start.",
             MetricType::Gauge);
  MetricFamily limits = Family(
      "jam_balancer_limit",
      "The state's limits: max_jams, max_total_users (members and "
      "reservations together) and max_sessions; calls past one are refused "
      "with RESOURCE_EXHAUSTED.",
      MetricType::Gauge);
  for (const PoolReading& pool : pools) {
    AddSeries(depth, pool).gauge.value =
        static_cast<double>(pool.strand_queue_depth);
    AddSeries(longest, pool).gauge.value =
        absl::ToDoubleSeconds(pool.strand_longest_step);
    const std::pair<const char*, uint64_t> values[] = {
        {"max_jams", pool.limits.collection.max_jams},
        {"max_total_users", pool.limits.collection.max_total_users},
        {"max_sessions", pool.limits.max_sessions}};
    for (const auto& [name, value] : values) {
      ClientMetric& metric = AddSeries(limits, pool);
      metric.label.push_back({"limit", name});
      metric.gauge.value = static_cast<double>(value);
    }
    FillHistogram(pool.strand_wait, &AddSeries(wait, pool));
    FillHistogram(pool.strand_run, &AddSeries(run, pool));
  }
  families.push_back(std::move(depth));
  families.push_back(std::move(wait));
  families.push_back(std::move(run));
  families.push_back(std::move(longest));
  families.push_back(std::move(limits));
  return families;
}

}  // namespace jambalancer
